"""Resume files of per-frame stages: a killed job continues after its last saved step.

Beside an output ``X.h5`` lives ``X.h5.resume/``:

* ``chunk_<first>_<end>.npz``: the per-step results of steps [first, end) (never rewritten);
* ``state.npz``: the next step to run, the stage's state to continue from there, and a
  fingerprint of the parameters and inputs; written after the chunks it refers to.

Stages whose state holds everything (running means) use no chunks (``chunked=False``).

Every file is written under a temporary name and renamed, so a kill at any moment leaves either
the previous consistent state or the new one. A fingerprint that does not match (parameters or
inputs changed) discards the folder, and so does a folder that cannot be read. The stage removes
the folder once its artifact is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.io.atomic import atomic_path

log = logging.getLogger(__name__)

_CHUNK = re.compile(r"chunk_(\d+)_(\d+)\.npz")


# Stage settings that change how a job runs, not what it computes. They are left out of the
# resume fingerprint and of Snakemake's params (workflow/rules/common.smk), so editing them
# neither discards resume data nor reruns anything; the rule scripts add them back.
RUN_SETTINGS = ("checkpoint_every", "log_every", "scene_cache", "prefetch")


def without_run_settings(params: dict) -> dict:
    return {key: value for key, value in params.items() if key not in RUN_SETTINGS}


def with_run_settings(params: dict, section: dict) -> dict:
    """``params`` plus the run settings found in ``section`` (a stage's config section)."""
    return {**params, **{key: section[key] for key in RUN_SETTINGS if key in section}}


def fingerprint(params: dict, inputs, extra=None) -> str:
    """Identity of a run: parameters (without run settings), ``extra`` (anything else JSON that decides
    the result, e.g. the training mode) and each input's path, size and modification time (folders:
    their own entry). Every resumable stage and `train` use this one."""
    h = hashlib.sha256(json.dumps(without_run_settings(params), sort_keys=True, default=str).encode())
    if extra is not None:
        h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for path in inputs:
        stat = os.stat(path)
        h.update(f"{os.fspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def _save_npz_atomically(path: Path, arrays: dict, compress: bool = True) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        (np.savez_compressed if compress else np.savez)(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@dataclass
class ResumePoint:
    """Where a stage continues: ``next_step``, its saved ``state`` and the chunk files before it."""

    next_step: int
    state: dict[str, np.ndarray]
    chunk_files: list[Path]

    def chunks(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(first step, arrays) of each saved chunk, in step order, loaded one at a time."""
        for path in self.chunk_files:
            yield int(_CHUNK.fullmatch(path.name).group(1)), _load_npz(path)

    def json(self, key: str):
        return json.loads(str(self.state[key]))


class ResumeFolder:
    """The ``<output>.resume/`` folder of one output, for runs with the fingerprint ``key``."""

    def __init__(self, out_path, key: str, chunked: bool = True):
        out_path = Path(out_path)
        self.path = out_path.with_name(out_path.name + ".resume")
        self.key = key
        self.chunked = chunked

    def _chunks_before(self, next_step: int) -> list[Path]:
        """Chunk files covering exactly [0, next_step) in order (later ones are from a lost save)."""
        spans = {}
        for path in self.path.glob("chunk_*.npz"):
            match = _CHUNK.fullmatch(path.name)
            if match:
                spans[int(match.group(1))] = (int(match.group(2)), path)
        files, covered = [], 0
        while covered < next_step:
            if covered not in spans:
                raise ValueError(f"no saved chunk starts at step {covered} (state says {next_step} steps are done)")
            covered, path = spans[covered]
            files.append(path)
        if covered != next_step:
            raise ValueError(f"saved chunks end at step {covered}, state says {next_step}")
        return files

    def load(self) -> ResumePoint | None:
        """The saved point to continue from, or None (nothing saved, other parameters, or unreadable)."""
        state_file = self.path / "state.npz"
        if not state_file.is_file():
            return None
        try:
            state = _load_npz(state_file)
            if str(state.pop("fingerprint")) != self.key:
                log.info("resume data in %s is for other parameters or inputs; starting over", self.path)
                self.clear()
                return None
            next_step = int(state.pop("next_step"))
            return ResumePoint(next_step, state, self._chunks_before(next_step) if self.chunked else [])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("resume data in %s is unusable (%s); starting over", self.path, exc)
            self.clear()
            return None

    def save(self, first_unsaved: int, next_step: int, chunk: dict[str, np.ndarray] | None,
             state: dict[str, np.ndarray], compress_state: bool = True) -> None:
        """Save the results of steps [first_unsaved, next_step) and the state to continue at next_step.

        ``compress_state=False`` for large float states (features), which compress poorly and slowly.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if self.chunked and next_step > first_unsaved:
            if chunk is None:
                raise ValueError("steps were run since the last save but no chunk was given")
            _save_npz_atomically(self.path / f"chunk_{first_unsaved:08d}_{next_step:08d}.npz", chunk)
        arrays = {"fingerprint": np.asarray(self.key), "next_step": np.asarray(next_step), **state}
        _save_npz_atomically(self.path / "state.npz", arrays, compress=compress_state)

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def json_array(value) -> np.ndarray:
    """A JSON-serialisable value stored as a 0-d string array in a state file."""
    return np.asarray(json.dumps(value))
