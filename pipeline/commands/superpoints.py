"""``python -m pipeline superpoints INPUT --out OUT``: Felzenszwalb superpoints of a mesh or cloud.

INPUT is a mesh or point-cloud ``.ply`` or a ``scene.h5``. OUT ending in ``.json`` gets ScanNet's
``segs.json`` format (segment ids are representative vertex indices, as ScanNet's Segmentator
writes them); anything else gets the ``superpoints`` HDF5 artifact (ids relabelled 0..S-1).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.io.atomic import write_text
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.params import SuperpointsParams

log = logging.getLogger(__name__)

# ScanNet's segs.json files carry these keys; only kThresh and segMinVerts apply to this
# segmenter, the others are ScanNet's stock values, kept so strict readers find them.
_SCANNET_STOCK_PARAMS = {
    "minPoints": "750",
    "maxPoints": "30000",
    "thinThresh": "0.05",
    "flatThresh": "0.001",
    "minLength": "0.02",
    "maxLength": "1",
}


@dataclass
class Geometry:
    vertices: np.ndarray
    faces: np.ndarray | None
    normals: np.ndarray | None
    colors: np.ndarray | None
    scene_id: str
    path: Path


def load_geometry(path: str | os.PathLike) -> Geometry:
    """Vertices (and faces, normals, colours where present) from a ``.ply`` or a ``scene.h5``."""
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        from pipeline.io.artifacts import read_artifact

        scene = read_artifact(path, "scene", required=["vertices"])
        name = scene.attrs.get("scene_name") or path.parent.name
        return Geometry(
            scene["vertices"], scene.get("faces"), scene.get("normals"), scene.get("colors"), str(name), path
        )
    if path.suffix.lower() == ".ply":
        from pipeline.io.ply import read_ply

        ply = read_ply(path)
        stem = path.stem
        if stem.endswith("_vh_clean_2"):
            name = stem[: -len("_vh_clean_2")]
        elif stem == "points":
            name = path.parent.name
        else:
            name = stem
        return Geometry(ply.vertices, ply.faces, ply.normals, ply.colors, name, path)
    raise InputError(path, "superpoints input must be a .ply mesh/cloud or a scene.h5")


@dataclass
class SuperpointResult:
    segment_ids: np.ndarray  # (N,) representative vertex index per vertex (ScanNet numbering)
    edges: np.ndarray  # (E, 2) graph edges used
    normals: np.ndarray  # (N, 3) unit normals for the summary
    mode: str


def compute_superpoints(geometry: Geometry, params: SuperpointsParams | dict) -> SuperpointResult:
    from pipeline.scene import superpoints as sp
    from pipeline.scene.geometry import mesh_vertex_normals

    p = SuperpointsParams.from_dict(params)
    mode = p.mode
    has_faces = geometry.faces is not None and len(geometry.faces) > 0
    if mode == "auto":
        mode = "mesh" if has_faces else "points"
    source = str(geometry.path)
    if mode == "mesh":
        seg = sp.segment_mesh(geometry.vertices, geometry.faces, p.k_thresh, p.seg_min_verts, source=source)
        normals = geometry.normals
        if normals is None or len(normals) != len(geometry.vertices):
            normals = mesh_vertex_normals(geometry.vertices, geometry.faces)
        return SuperpointResult(seg, sp.mesh_edges(geometry.faces), normals, mode)
    if mode == "points":
        normals = geometry.normals
        if normals is None or len(normals) != len(geometry.vertices):
            from pipeline.scene.geometry import point_cloud_normals

            sp.check_vertices(geometry.vertices, source)  # report NaNs before the normal estimation
            normals = point_cloud_normals(geometry.vertices, k=max(p.knn, 3))
        seg, edges = sp.segment_point_cloud(
            geometry.vertices,
            p.k_thresh,
            p.seg_min_verts,
            knn=p.knn,
            normals=normals,
            colors=geometry.colors,
            color_weight=p.color_weight,
            source=source,
        )
        return SuperpointResult(seg, edges, normals, mode)
    raise InputError(source, f"unknown superpoint mode {mode!r} (use auto, mesh or points)")


def segs_json_text(segment_ids: np.ndarray, scene_id: str, k_thresh: float, seg_min_verts: int) -> str:
    """ScanNet ``*.segs.json`` content (parameter values as strings, as in ScanNet's files)."""
    params = {"kThresh": f"{k_thresh:g}", "segMinVerts": str(int(seg_min_verts)), **_SCANNET_STOCK_PARAMS}
    head = json.dumps({"params": params, "sceneId": scene_id})[:-1]
    return head + ', "segIndices": [' + ",".join(map(str, np.asarray(segment_ids).tolist())) + "]}"


def read_segs_json(path: str | os.PathLike) -> np.ndarray:
    """segIndices of a ScanNet ``*.segs.json`` as an int64 array."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"unreadable segs.json ({exc})") from None
    if not isinstance(data, dict) or "segIndices" not in data:
        raise InputError(path, "has no 'segIndices' list")
    return np.asarray(data["segIndices"], np.int64)


def run_superpoints(scene_h5: str | os.PathLike, out_path: str | os.PathLike,
                    params: SuperpointsParams | dict | None = None) -> Path:
    """Superpoints of a scene.h5 (or .ply): mesh mode when it has faces, else point-cloud mode.

    Writes ScanNet segs.json when ``out_path`` ends in ``.json``, else the superpoints artifact.
    """
    p = SuperpointsParams.from_dict(params)
    geometry = load_geometry(scene_h5)
    if len(geometry.vertices) == 0:
        raise InputError(geometry.path, "has no vertices to segment")
    result = compute_superpoints(geometry, p)
    out_path = Path(out_path)
    if out_path.suffix.lower() == ".json":
        text = segs_json_text(result.segment_ids, geometry.scene_id, p.k_thresh, p.seg_min_verts)
        write_text(out_path, text)
        return out_path
    from pipeline.io.artifacts import write_artifact
    from pipeline.scene.superpoints import superpoint_summary

    summary = superpoint_summary(geometry.vertices, result.normals, result.segment_ids, result.edges,
                                 p.adjacency_radius)
    arrays = {
        "point_superpoint": summary.point_superpoint.astype(np.int32),
        "adjacency": summary.adjacency.astype(np.int32),
        "size": summary.size.astype(np.int32),
        "centroid": summary.centroid.astype(np.float32),
        "normal": summary.normal.astype(np.float32),
    }
    attrs = {"mode": result.mode, "n_superpoints": int(len(summary.size)), "scene_name": geometry.scene_id}
    write_artifact(out_path, "superpoints", arrays, params=p.to_dict(), inputs=[geometry.path], attrs=attrs)
    log.info("%s: %d superpoints (%s mode) -> %s", geometry.path, len(summary.size), result.mode, out_path)
    return out_path


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "superpoints", lambda args: run_superpoints(args.input, args.out, params_from_args(args)),
        help="Felzenszwalb superpoints (ScanNet Segmentator) of a mesh, cloud or scene.h5",
        params=SuperpointsParams,
        flags={"k_thresh": "Felzenszwalb k", "seg_min_verts": "minimum segment size",
               "mode": "graph from faces or kNN", "knn": "neighbours per point (points mode)",
               "color_weight": "RGB term weight (points mode)",
               "adjacency_radius": "superpoints with points this close (m) are adjacent too (0 = edges only)"},
    )
    parser.add_argument("input", help="mesh or point-cloud .ply, or scene.h5")
    parser.add_argument("--out", required=True, help="output: .json (ScanNet segs.json) or .h5 (superpoints artifact)")
