"""HDF5 artifacts between pipeline stages.

Every artifact carries attributes (stage, format version, the stage's parameters as JSON, the
package version, the inputs it was made from). It is written under a temporary name in the same
folder and renamed only when complete, so a killed job never leaves a file that looks finished.
Readers check stage, version and required datasets and name the file in every error.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import h5py
import numpy as np

from pipeline import __version__
from pipeline.errors import ArtifactError

# Bump a stage's version when its on-disk layout changes; readers refuse other versions.
FORMAT_VERSIONS: dict[str, int] = {
    "scene": 1,
    "superpoints": 1,
    "features_2d": 1,
    "features_3d": 1,
    "ncut": 1,
    "masks2d": 1,
    "tracks": 1,
    "lifted": 1,
    "boxes": 1,
    "pseudo_labels": 1,
}

# Chunk and compress arrays larger than this many elements; tiny ones stay contiguous.
_COMPRESS_MIN_ELEMENTS = 4096


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _dataset_kwargs(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.kind in "OUS" or array.size < _COMPRESS_MIN_ELEMENTS or array.ndim == 0:
        return {}
    return {"chunks": True, "compression": "gzip", "compression_opts": 4, "shuffle": True}


def _as_storable(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "U":  # h5py stores fixed-width unicode poorly; use UTF-8 strings
        return np.asarray([s.encode("utf-8") for s in array.ravel()], dtype=h5py.string_dtype()).reshape(
            array.shape
        )
    return array


def _write_tree(group: h5py.Group, arrays: Mapping[str, Any]) -> None:
    for name, value in arrays.items():
        if isinstance(value, Mapping):
            _write_tree(group.require_group(name), value)
            continue
        array = _as_storable(value)
        group.create_dataset(name, data=array, track_times=False, **_dataset_kwargs(array))


@contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a temporary HDF5 file beside ``path``; rename it to ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp_name, "w", track_order=True) as handle:
            yield handle
        os.chmod(tmp_name, 0o666 & ~_current_umask())  # mkstemp makes files private
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_artifact(
    path: str | os.PathLike,
    stage: str,
    arrays: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``arrays`` (nested mappings become groups) as a complete artifact at ``path``."""
    if stage not in FORMAT_VERSIONS:
        raise ValueError(f"unknown stage {stage!r}; register it in FORMAT_VERSIONS")
    with atomic_h5(path) as handle:
        handle.attrs["stage"] = stage
        handle.attrs["format_version"] = FORMAT_VERSIONS[stage]
        handle.attrs["params"] = json.dumps(dict(params or {}), sort_keys=True, default=str)
        handle.attrs["package_version"] = __version__
        handle.attrs["inputs"] = json.dumps([os.fspath(p) for p in inputs])
        for key, value in (attrs or {}).items():
            handle.attrs[key] = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
        _write_tree(handle, arrays)
    return Path(path)


class Artifact:
    """A loaded artifact: datasets by slash path (``art["frames/pose"]``) and its attributes."""

    def __init__(self, path: Path, data: dict[str, np.ndarray], attrs: dict[str, Any]):
        self.path = path
        self.data = data
        self.attrs = attrs

    @property
    def stage(self) -> str:
        return self.attrs["stage"]

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.attrs.get("params", "{}"))

    @property
    def inputs(self) -> list[str]:
        return json.loads(self.attrs.get("inputs", "[]"))

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.data[name]
        except KeyError:
            raise ArtifactError(self.path, f"has no dataset {name!r} (has: {sorted(self.data)})") from None

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


def _decode(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "O" or array.dtype.kind == "S":
        return np.asarray([v.decode("utf-8") if isinstance(v, bytes) else v for v in array.ravel()], dtype=str).reshape(
            array.shape
        )
    return array


def read_artifact(path: str | os.PathLike, stage: str, required: Iterable[str] = ()) -> Artifact:
    """Load a complete artifact, checking its stage, format version and required datasets."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(path, f"missing {stage} artifact (run the '{stage}' stage first)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(path, f"not a readable HDF5 file ({exc})") from None
    with handle:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
        found = attrs.get("stage")
        if found != stage:
            raise ArtifactError(path, f"is a {found!r} artifact, expected {stage!r}")
        version = int(attrs.get("format_version", -1))
        if version != FORMAT_VERSIONS[stage]:
            raise ArtifactError(
                path,
                f"has {stage} format version {version}, this package reads version "
                f"{FORMAT_VERSIONS[stage]}; rerun the '{stage}' stage",
            )
        data: dict[str, np.ndarray] = {}
        handle.visititems(
            lambda name, obj: data.__setitem__(name, _decode(obj[()])) if isinstance(obj, h5py.Dataset) else None
        )
    missing = [name for name in required if name not in data]
    if missing:
        raise ArtifactError(path, f"{stage} artifact lacks required dataset(s) {missing}")
    return Artifact(path, data, attrs)
