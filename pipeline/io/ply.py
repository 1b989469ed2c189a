"""Minimal, fast PLY reading and writing (binary little/big endian and ASCII).

Handles what ScanNet-style data uses: a ``vertex`` element with float x y z, optional uchar
red green blue (alpha), optional float nx ny nz, and an optional ``face`` element with one list
property (``vertex_indices`` or ``vertex_index``). Polygons with more than three corners are
split into triangle fans.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.io.atomic import atomic_path
from pipeline.errors import InputError

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


@dataclass
class PlyData:
    vertices: np.ndarray  # (N, 3) float32
    colors: np.ndarray | None  # (N, 3) uint8
    normals: np.ndarray | None  # (N, 3) float32
    faces: np.ndarray | None  # (F, 3) int64 triangles


@dataclass
class _Element:
    name: str
    count: int
    properties: list[tuple[str, str, str | None]]  # (name, value type, list count type or None)


def _parse_header(handle, path: Path) -> tuple[str, list[_Element]]:
    if handle.readline().strip() != b"ply":
        raise InputError(path, "not a PLY file (first line is not 'ply')")
    fmt = None
    elements: list[_Element] = []
    while True:
        raw = handle.readline()
        if not raw:
            raise InputError(path, "PLY header has no 'end_header' line")
        words = raw.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property":
            if not elements:
                raise InputError(path, "PLY property before any element")
            if words[1] == "list":
                elements[-1].properties.append((words[4], _dtype_code(words[3], path), _dtype_code(words[2], path)))
            else:
                elements[-1].properties.append((words[2], _dtype_code(words[1], path), None))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise InputError(path, f"unsupported PLY format {fmt!r}")
    return fmt, elements


def _dtype_code(ply_type: str, path: Path) -> str:
    try:
        return _PLY_TYPES[ply_type]
    except KeyError:
        raise InputError(path, f"unknown PLY property type {ply_type!r}") from None


def _triangulate(counts: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons given their corner counts and concatenated indices."""
    if counts.size == 0:
        return np.zeros((0, 3), np.int64)
    if np.all(counts == 3):
        return flat.reshape(-1, 3).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    tris = []
    for start, count in zip(starts, counts):
        for k in range(1, count - 1):
            tris.append((flat[start], flat[start + k], flat[start + k + 1]))
    return np.asarray(tris, np.int64).reshape(-1, 3)


def _read_binary_faces(handle, element: _Element, endian: str, path: Path) -> np.ndarray:
    lists = [p for p in element.properties if p[2] is not None]
    if len(lists) != 1 or len(element.properties) != 1:
        raise InputError(path, "face element must have exactly one list property")
    _, value_type, count_type = lists[0]
    count_dt = np.dtype(endian + count_type)
    value_dt = np.dtype(endian + value_type)
    # Fast path: every face is a triangle, so the records have a fixed size.
    record = np.dtype([("n", count_dt), ("v", value_dt, 3)])
    start = handle.tell()
    blob = handle.read(record.itemsize * element.count)
    if len(blob) == record.itemsize * element.count:
        faces = np.frombuffer(blob, dtype=record)
        if np.all(faces["n"] == 3):
            return faces["v"].astype(np.int64)
    handle.seek(start)
    counts, flat = [], []
    for _ in range(element.count):
        raw = handle.read(count_dt.itemsize)
        if len(raw) < count_dt.itemsize:
            raise InputError(path, "PLY file is truncated inside the face list")
        n = int(np.frombuffer(raw, count_dt)[0])
        blob = handle.read(n * value_dt.itemsize)
        if len(blob) != n * value_dt.itemsize:
            raise InputError(path, "PLY file is truncated inside the face list")
        values = np.frombuffer(blob, value_dt)
        counts.append(n)
        flat.append(values)
    return _triangulate(np.asarray(counts), np.concatenate(flat) if flat else np.zeros(0, np.int64))


def read_ply(path: str | os.PathLike) -> PlyData:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "PLY file does not exist")
    with open(path, "rb") as handle:
        fmt, elements = _parse_header(handle, path)
        by_name = {e.name: e for e in elements}
        if "vertex" not in by_name:
            raise InputError(path, "PLY file has no 'vertex' element")
        vertex_table = None
        faces = None
        if fmt == "ascii":
            lines = handle.read().decode("ascii", errors="replace").splitlines()
            cursor = 0
            for element in elements:
                rows = lines[cursor : cursor + element.count]
                if len(rows) < element.count:
                    raise InputError(path, f"PLY file is truncated: element {element.name!r} is incomplete")
                cursor += element.count
                if element.name == "vertex":
                    names = [p[0] for p in element.properties]
                    values = np.loadtxt(rows, ndmin=2) if rows else np.zeros((0, len(names)))
                    vertex_table = {n: values[:, i] for i, n in enumerate(names)}
                elif element.name == "face":
                    counts, flat = [], []
                    for row in rows:
                        numbers = row.split()
                        counts.append(int(numbers[0]))
                        flat.extend(int(x) for x in numbers[1 : 1 + int(numbers[0])])
                    faces = _triangulate(np.asarray(counts, np.int64), np.asarray(flat, np.int64))
        else:
            endian = "<" if fmt == "binary_little_endian" else ">"
            for element in elements:
                if element.name == "face":
                    faces = _read_binary_faces(handle, element, endian, path)
                    continue
                if any(p[2] is not None for p in element.properties):
                    if element.name == "vertex":
                        raise InputError(path, "list properties on vertices are not supported")
                    break  # an unknown list element after the ones we need: stop reading
                dtype = np.dtype([(p[0], endian + p[1]) for p in element.properties])
                blob = handle.read(dtype.itemsize * element.count)
                if len(blob) < dtype.itemsize * element.count:
                    raise InputError(path, f"PLY file is truncated inside element {element.name!r}")
                if element.name == "vertex":
                    table = np.frombuffer(blob, dtype=dtype)
                    vertex_table = {n: table[n] for n in dtype.names}
    assert vertex_table is not None
    missing = [c for c in "xyz" if c not in vertex_table]
    if missing:
        raise InputError(path, f"PLY vertices lack coordinate(s) {missing}")
    vertices = np.stack([vertex_table[c] for c in "xyz"], axis=1).astype(np.float32)
    colors = None
    if all(c in vertex_table for c in ("red", "green", "blue")):
        colors = np.stack([vertex_table[c] for c in ("red", "green", "blue")], axis=1)
        if colors.dtype.kind == "f" and colors.max(initial=0) <= 1.0:
            colors = colors * 255.0
        colors = np.clip(np.rint(colors), 0, 255).astype(np.uint8)
    normals = None
    if all(c in vertex_table for c in ("nx", "ny", "nz")):
        normals = np.stack([vertex_table[c] for c in ("nx", "ny", "nz")], axis=1).astype(np.float32)
    if faces is not None and faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(path, f"PLY faces index vertices outside 0..{len(vertices) - 1}")
    return PlyData(vertices, colors, normals, faces)


def write_ply(
    path: str | os.PathLike,
    vertices: np.ndarray,
    colors: np.ndarray | None = None,
    faces: np.ndarray | None = None,
    normals: np.ndarray | None = None,
) -> None:
    """Write a binary little-endian PLY in ScanNet's encoding (faces as ``list uchar int``)."""
    vertices = np.asarray(vertices, np.float32)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    table = np.empty(len(vertices), dtype=fields)
    table["x"], table["y"], table["z"] = vertices.T
    if normals is not None:
        table["nx"], table["ny"], table["nz"] = np.asarray(normals, np.float32).T
    if colors is not None:
        table["red"], table["green"], table["blue"] = np.asarray(colors, np.uint8).T
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertices)}"]
    header += [f"property {'float' if t == '<f4' else 'uchar'} {n}" for n, t in fields]
    if faces is not None:
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    header.append("end_header")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(table.tobytes())
        if faces is not None:
            face_table = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", 3)])
            face_table["n"] = 3
            face_table["v"] = np.asarray(faces, np.int32)
            handle.write(face_table.tobytes())
