"""Resume files of the track stage: a killed job continues from the last saved step.

Beside the output ``tracks.h5`` lives ``tracks.h5.resume/``:

* ``labels_<first step>.npz``: the label maps of a run of finished steps (never rewritten);
* ``state.npz``: the next step to run, the state machine (JSON), the tracker's snapshot and a
  fingerprint of the parameters and inputs; written after the label chunks it refers to.

Every file is written under a temporary name and renamed, so a kill at any moment leaves either
the previous consistent state or the new one. A fingerprint that does not match (parameters or
inputs changed) discards the folder. The folder is removed once the artifact is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def fingerprint(params: dict, inputs) -> str:
    """Parameters plus each input's size and modification time."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for path in inputs:
        stat = os.stat(path)
        h.update(f"{os.fspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def _save_npz_atomically(path: Path, arrays: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class ResumePoint:
    next_step: int
    labels: np.ndarray  # (next_step, H, W) label maps of the finished steps
    machine: dict
    tracker: dict[str, np.ndarray]


class ResumeFolder:
    def __init__(self, out_path, key: str):
        out_path = Path(out_path)
        self.path = out_path.with_name(out_path.name + ".resume")
        self.key = key

    def load(self) -> ResumePoint | None:
        state_file = self.path / "state.npz"
        if not state_file.is_file():
            return None
        try:
            with np.load(state_file) as data:
                state = {k: data[k] for k in data.files}
            if str(state["fingerprint"]) != self.key:
                log.info("resume data in %s is for other parameters or inputs; starting over", self.path)
                self.clear()
                return None
            next_step = int(state["next_step"])
            chunks, covered = [], 0
            for chunk in sorted(self.path.glob("labels_*.npz")):
                first = int(chunk.stem.split("_")[1])
                if first != covered or first >= next_step:
                    continue
                with np.load(chunk) as data:
                    chunks.append(data["labels"])
                covered += len(chunks[-1])
            if covered < next_step:
                raise ValueError(f"label chunks cover {covered} steps, state says {next_step}")
            tracker = {k[len("tracker/"):]: v for k, v in state.items() if k.startswith("tracker/")}
            labels = np.concatenate(chunks)[:next_step]
            return ResumePoint(next_step, labels, json.loads(str(state["machine"])), tracker)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("resume data in %s is unusable (%s); starting over", self.path, exc)
            self.clear()
            return None

    def save(self, first_unsaved: int, labels: np.ndarray, next_step: int, machine: dict,
             tracker: dict[str, np.ndarray]) -> None:
        """Save label maps of steps [first_unsaved, next_step) and the state to continue at next_step."""
        self.path.mkdir(parents=True, exist_ok=True)
        if next_step > first_unsaved:
            _save_npz_atomically(self.path / f"labels_{first_unsaved:08d}.npz",
                                 {"labels": labels[first_unsaved:next_step]})
        arrays = {"fingerprint": np.asarray(self.key), "next_step": np.asarray(next_step),
                  "machine": np.asarray(json.dumps(machine))}
        arrays.update({f"tracker/{k}": v for k, v in tracker.items()})
        _save_npz_atomically(self.path / "state.npz", arrays)

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
