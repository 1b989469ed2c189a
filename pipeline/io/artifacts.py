"""HDF5 artifacts between pipeline stages.

Every artifact carries attributes (stage, format version, the stage's parameters as JSON, the
package version, the inputs it was made from). It is written under a temporary name in the same
folder and renamed only when complete, so a killed job never leaves a file that looks finished.
Readers check stage, version and required datasets and name the file in every error.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import h5py
import numpy as np

from pipeline import __version__
from pipeline.io.atomic import atomic_path, remove_stale_temporaries
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
    """Open a temporary HDF5 file beside ``path``; rename it to ``path`` only on success.

    Temporaries of ``path`` left by a killed writer are removed first: one job writes an output
    at a time (Snakemake guarantees it), so they belong to no live process.
    """
    remove_stale_temporaries(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as handle:
        yield handle


def _write_header(handle: h5py.File, stage: str, params, inputs, attrs) -> None:
    handle.attrs["stage"] = stage
    handle.attrs["format_version"] = FORMAT_VERSIONS[stage]
    handle.attrs["params"] = json.dumps(dict(params or {}), sort_keys=True, default=str)
    handle.attrs["package_version"] = __version__
    handle.attrs["inputs"] = json.dumps([os.fspath(p) for p in inputs])
    set_attrs(handle, attrs or {})


def set_attrs(handle: h5py.File, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        handle.attrs[key] = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value


def write_artifact(
    path: str | os.PathLike,
    stage: str,
    arrays: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``arrays`` (nested mappings become groups) as a complete artifact at ``path``."""
    with artifact_writer(path, stage, params, inputs, attrs) as writer:
        writer.write(arrays)
    return Path(path)


class ArtifactWriter:
    """An artifact being written: stream large per-frame arrays row by row, then write the rest."""

    def __init__(self, handle: h5py.File):
        self.handle = handle

    def stream(self, name: str, shape: tuple[int, ...], dtype) -> h5py.Dataset:
        """A dataset filled one row (first axis) at a time; each row is one compressed chunk."""
        chunks = (1, *shape[1:]) if shape[0] and all(shape[1:]) else None
        compression = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if chunks else {}
        return self.handle.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, track_times=False,
                                          **compression)

    def growing(self, name: str, row_shape: tuple[int, ...], dtype, rows_per_chunk: int = 64) -> h5py.Dataset:
        """A dataset that starts empty and grows along its first axis (see :func:`append_rows`)."""
        return self.handle.create_dataset(name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=dtype,
                                          chunks=(rows_per_chunk, *row_shape), compression="gzip",
                                          compression_opts=4, shuffle=True, track_times=False)

    def write(self, arrays: Mapping[str, Any]) -> None:
        _write_tree(self.handle, arrays)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        set_attrs(self.handle, attrs)


def append_rows(dataset: h5py.Dataset, rows: np.ndarray) -> None:
    """Append ``rows`` to a dataset made by :meth:`ArtifactWriter.growing`."""
    if len(rows):
        start = dataset.shape[0]
        dataset.resize(start + len(rows), axis=0)
        dataset[start:] = rows


@contextmanager
def artifact_writer(path: str | os.PathLike, stage: str, params: Mapping[str, Any] | None = None,
                    inputs: Iterable[str | os.PathLike] = (), attrs: Mapping[str, Any] | None = None
                    ) -> Iterator[ArtifactWriter]:
    """Write an artifact in pieces; it appears at ``path`` only when the block ends without error."""
    if stage not in FORMAT_VERSIONS:
        raise ValueError(f"unknown stage {stage!r}; register it in FORMAT_VERSIONS")
    with atomic_h5(path) as handle:
        _write_header(handle, stage, params, inputs, attrs)
        yield ArtifactWriter(handle)


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


def _checked(path: Path, stage: str) -> tuple[h5py.File, dict[str, Any]]:
    """Open an artifact and check its stage and format version; returns the open file and its attributes."""
    if not path.is_file():
        raise ArtifactError(path, f"missing {stage} artifact (run the '{stage}' stage first)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(path, f"not a readable HDF5 file ({exc})") from None
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
    found = attrs.get("stage")
    version = int(attrs.get("format_version", -1))
    if found != stage or version != FORMAT_VERSIONS[stage]:
        handle.close()
        if found != stage:
            raise ArtifactError(path, f"is a {found!r} artifact, expected {stage!r}")
        raise ArtifactError(
            path,
            f"has {stage} format version {version}, this package reads version "
            f"{FORMAT_VERSIONS[stage]}; rerun the '{stage}' stage",
        )
    return handle, attrs


def _check_required(path: Path, stage: str, names, required: Iterable[str]) -> None:
    missing = [name for name in required if name not in names]
    if missing:
        raise ArtifactError(path, f"{stage} artifact lacks required dataset(s) {missing}")


def read_artifact(path: str | os.PathLike, stage: str, required: Iterable[str] = ()) -> Artifact:
    """Load a complete artifact, checking its stage, format version and required datasets."""
    path = Path(path)
    handle, attrs = _checked(path, stage)
    with handle:
        data: dict[str, np.ndarray] = {}
        handle.visititems(
            lambda name, obj: data.__setitem__(name, _decode(obj[()])) if isinstance(obj, h5py.Dataset) else None
        )
    _check_required(path, stage, data, required)
    return Artifact(path, data, attrs)


@contextmanager
def open_artifact(path: str | os.PathLike, stage: str, required: Iterable[str] = ()) -> Iterator[Artifact]:
    """Like :func:`read_artifact`, but datasets stay on disk (``h5py.Dataset``: slice what you need).

    For stages whose inputs are too large to load at once (per-frame label maps).
    """
    path = Path(path)
    handle, attrs = _checked(path, stage)
    with handle:
        data: dict[str, Any] = {}
        handle.visititems(lambda name, obj: data.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
        _check_required(path, stage, data, required)
        yield Artifact(path, data, attrs)
