"""Readers for one scene in the ScanNet export layout (file I/O lives here, not in algorithms).

    <scene>/color/<i>.jpg  depth/<i>.png  pose/<i>.txt  intrinsic/intrinsic_{color,depth}.txt
    <scene>/<scene>_vh_clean_2.ply   (optional mesh)   <scene>/points.ply (point cloud instead)
    <scene>/<scene>_vh_clean_2.0.010000.segs.json + <scene>.aggregation.json  (optional GT)
    <scene>/<scene>.txt  (optional GT in the instance benchmark's txt format, if no aggregation.json)
    <scene>/boxes.json  (optional boxes)

Every error names the file and what is wrong with it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import InputError
from pipeline.io.nyu40 import NYU40_NAMES, nyu40_id, nyu40_name

log = logging.getLogger(__name__)

FRAME_FOLDERS = {"color": ".jpg", "depth": ".png", "pose": ".txt"}
DEPTH_INVALID = (0, 65535)  # ScanNet and 7-Scenes both mark missing depth with these


def frame_path(scene_dir: str | os.PathLike, kind: str, frame_id: int) -> Path:
    return Path(scene_dir) / kind / f"{frame_id}{FRAME_FOLDERS[kind]}"


def _ids_in(folder: Path, suffix: str) -> set[int]:
    ids = set()
    for entry in folder.iterdir():
        if entry.suffix.lower() == suffix and entry.stem.isdigit():
            ids.add(int(entry.stem))
    return ids


def _describe_difference(a: set[int], b: set[int]) -> str:
    only = sorted(a - b)
    shown = ", ".join(map(str, only[:5])) + (" ..." if len(only) > 5 else "")
    return f"{len(only)} frame id(s) [{shown}]"


def list_frame_ids(scene_dir: str | os.PathLike) -> np.ndarray:
    """Sorted frame ids present in color/, depth/ and pose/; an error if the three disagree.

    Returns an empty array when the scene has none of the three folders (a point-cloud scene).
    """
    scene_dir = Path(scene_dir)
    present = {kind: (scene_dir / kind).is_dir() for kind in FRAME_FOLDERS}
    if not any(present.values()):
        return np.zeros(0, np.int64)
    missing = [kind for kind, ok in present.items() if not ok]
    if missing:
        raise InputError(scene_dir / missing[0], f"frame folder is missing (scene has {[k for k in present if present[k]]})")
    ids = {kind: _ids_in(scene_dir / kind, suffix) for kind, suffix in FRAME_FOLDERS.items()}
    reference = ids["color"]
    for kind in ("depth", "pose"):
        if ids[kind] != reference:
            if reference - ids[kind]:
                problem = f"lacks {_describe_difference(reference, ids[kind])} that color/ has"
            else:
                problem = f"has {_describe_difference(ids[kind], reference)} that color/ lacks"
            raise InputError(scene_dir / kind, f"frame ids differ from color/: {problem}")
    return np.asarray(sorted(reference), np.int64)


def read_matrix4(path: str | os.PathLike) -> np.ndarray:
    """A 4x4 matrix from a whitespace-separated text file; 'inf'/'-inf'/'nan' entries are kept."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file is missing")
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError as exc:
        raise InputError(path, f"is not a matrix of numbers ({exc})") from None
    if values.size != 16:
        raise InputError(path, f"expected 16 numbers (a 4x4 matrix), found {values.size}")
    return values.reshape(4, 4)


def read_pose(scene_dir: str | os.PathLike, frame_id: int) -> np.ndarray:
    return read_matrix4(frame_path(scene_dir, "pose", frame_id))


def pose_is_valid(pose: np.ndarray) -> bool:
    """ScanNet marks failed tracking with -inf poses; also reject a singular rotation block."""
    return bool(np.all(np.isfinite(pose)) and abs(np.linalg.det(pose[:3, :3])) > 1e-6)


def read_intrinsic(scene_dir: str | os.PathLike, kind: str) -> np.ndarray:
    """intrinsic/intrinsic_<kind>.txt as a 4x4 matrix (kind: color or depth)."""
    path = Path(scene_dir) / "intrinsic" / f"intrinsic_{kind}.txt"
    if not path.is_file():
        raise InputError(path, f"{kind} intrinsics are missing (needed to project frames)")
    matrix = read_matrix4(path)
    if not (np.all(np.isfinite(matrix)) and matrix[0, 0] > 0 and matrix[1, 1] > 0):
        raise InputError(path, "intrinsic matrix needs finite values and positive focal lengths fx, fy")
    return matrix


def image_size(path: str | os.PathLike, verify: bool = True) -> tuple[int, int]:
    """(width, height) of an image; with ``verify`` the whole image is decoded too (any format).

    ``Image.verify()`` alone is not enough: for PNG it checks chunk checksums but not that the
    image data is complete, and for JPEG it decodes nothing, so a truncated frame would pass.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            size = image.size
            if verify:
                image.verify()
        if verify:
            # verify() leaves the image unusable; decode every pixel from a fresh open.
            with Image.open(path) as image:
                image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable image ({exc})") from None
    return size


def read_color(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable colour image ({exc})") from None


def read_integer_image(path: str | os.PathLike, what: str) -> np.ndarray:
    """A single-channel integer image (depth, instance map) as stored; errors name the file."""
    try:
        with Image.open(path) as image:
            raw = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable {what} image ({exc})") from None
    if raw.ndim != 2 or raw.dtype.kind not in "ui":
        raise InputError(path, f"{what} must be a single-channel integer PNG, got {raw.dtype} with shape {raw.shape}")
    return raw


def read_depth(path: str | os.PathLike, depth_scale: float = 1000.0) -> np.ndarray:
    """(H, W) float32 metres; missing readings (0 or 65535) become 0."""
    raw = read_integer_image(path, "depth")
    depth = raw.astype(np.float32) / depth_scale
    depth[np.isin(raw, DEPTH_INVALID)] = 0.0
    return depth


@dataclass
class GroundTruth:
    """Per-vertex ground-truth instances; per-instance arrays are indexed by position 0..K-1.

    Instances are ordered by their own id. ``instance_id`` is the ground truth's own id of each
    instance: the txt's ``value % 1000``; for aggregation.json it is the position itself (segGroups
    sorted by objectId, so consecutive from 0 even where objectIds have gaps).
    """

    instance: np.ndarray  # (N,) int32 position of each vertex's instance, -1 = unannotated
    labels: list[str]  # (K,) class name of each instance
    nyu40: np.ndarray  # (K,) int32 NYU40 id of each instance, -1 = unknown
    instance_id: np.ndarray  # (K,) int64 the ground truth's own instance id
    source: str = ""  # the file it came from: "aggregation.json" or "<scene>.txt"
    nyu40_source: str = ""  # where the NYU40 ids come from; "" when they are unknown


BENCHMARK_LABEL_FACTOR = 1000  # <scene>.txt holds nyu40_id * 1000 + instance_id per vertex
_DECIMAL = re.compile(r"-?[0-9]+")


def parse_benchmark_ground_truth(path: str | os.PathLike, n_vertices: int) -> np.ndarray:
    """(N,) int64 values of a benchmark-format ``<scene>.txt``: one non-negative integer per line.

    Errors name the file and the first offending line.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"unreadable ground truth ({exc})") from None
    while lines and not lines[-1].strip():  # a trailing blank line is not a vertex
        lines.pop()
    values = np.zeros(len(lines), np.int64)
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not _DECIMAL.fullmatch(text):
            raise InputError(
                path, f"line {number}: {text[:40]!r} is not an integer (expected nyu40_id * 1000 + instance_id, 0 = unannotated)"
            )
        if text.startswith("-"):
            raise InputError(path, f"line {number}: negative value {text} (0 = unannotated, else nyu40_id * 1000 + instance_id)")
        if len(text) > 18:  # would overflow int64; no real label is that large
            raise InputError(path, f"line {number}: value {text[:40]} is too large")
        values[number - 1] = int(text)
    if len(values) < n_vertices:
        raise InputError(
            path, f"ends at line {len(values)} but the scene has {n_vertices} vertices/points (one line per vertex, in file order)"
        )
    if len(values) > n_vertices:
        raise InputError(
            path, f"line {n_vertices + 1}: more lines ({len(values)}) than the scene's {n_vertices} vertices/points"
        )
    return values


def ground_truth_from_benchmark_values(values: np.ndarray) -> GroundTruth:
    """Instances of per-vertex ``nyu40_id * 1000 + instance_id`` values (0 = unannotated).

    Each distinct non-zero value is one instance, as in the benchmark's evaluation script; instances
    are ordered by their own id (value % 1000), ties by class id.
    """
    values = np.asarray(values, np.int64)
    annotated = values > 0
    codes, inverse = np.unique(values[annotated], return_inverse=True)
    own_id, class_id = codes % BENCHMARK_LABEL_FACTOR, codes // BENCHMARK_LABEL_FACTOR
    order = np.lexsort((class_id, own_id))
    position = np.empty(len(codes), np.int64)
    position[order] = np.arange(len(codes))
    instance = np.full(len(values), -1, np.int32)
    instance[annotated] = position[inverse.ravel()]
    own_id, class_id = own_id[order], class_id[order]
    known = (class_id >= 1) & (class_id <= max(NYU40_NAMES))
    if not known.all():
        log.warning(
            "%d ground-truth instance(s) have class ids outside NYU40's 1..40 (e.g. %d): their class is unknown",
            int((~known).sum()), int(class_id[~known][0]),
        )
    shared, counts = np.unique(own_id, return_counts=True)
    if np.any(counts > 1):
        # The benchmark keys instances by the whole value, so these stay apart; an instance_id
        # (e.g. in boxes.json) can only name the first of them.
        log.warning("instance id(s) %s appear with several classes; each value is its own instance", shared[counts > 1][:5].tolist())
    return GroundTruth(
        instance=instance,
        labels=[nyu40_name(c) for c in class_id],
        nyu40=np.where(known, class_id, -1).astype(np.int32),
        instance_id=own_id.astype(np.int64),
    )


def read_benchmark_ground_truth(path: str | os.PathLike, n_vertices: int) -> GroundTruth:
    """Ground truth from a benchmark-format ``<scene>.txt`` (see ``parse_benchmark_ground_truth``)."""
    path = Path(path)
    gt = ground_truth_from_benchmark_values(parse_benchmark_ground_truth(path, n_vertices))
    gt.source, gt.nyu40_source = path.name, path.name
    return gt


def _label_key(label: str) -> str:
    return str(label).strip().lower()


def read_label_map(path: str | os.PathLike) -> dict[str, int]:
    """raw_category -> NYU40 id from ScanNet's ``scannetv2-labels.combined.tsv`` (tab separated,
    header line; 0 = no NYU40 class). Errors name the file and the line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"unreadable label map ({exc})") from None
    header = [cell.strip() for cell in lines[0].split("\t")] if lines else []
    missing = [column for column in ("raw_category", "nyu40id") if column not in header]
    if missing:
        raise InputError(path, f"line 1: the tab-separated header lacks column(s) {missing} (it has {header[:8]})")
    raw_column, id_column = header.index("raw_category"), header.index("nyu40id")
    mapping: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) <= max(raw_column, id_column):
            raise InputError(path, f"line {number}: {len(cells)} tab-separated column(s), need at least {max(raw_column, id_column) + 1}")
        raw, text = _label_key(cells[raw_column]), cells[id_column].strip()
        if not raw:
            raise InputError(path, f"line {number}: empty raw_category")
        if not text.isascii() or not text.isdigit() or int(text) > max(NYU40_NAMES):
            raise InputError(path, f"line {number}: nyu40id {text!r} is not an NYU40 id (0..40)")
        if raw in mapping and mapping[raw] != int(text):
            # ScanNet's own reader lets the later row win; say so rather than refuse the file.
            log.warning("%s line %d: %r mapped again (%s -> %s); the later row wins", path, number, raw, mapping[raw], text)
        mapping[raw] = int(text)
    return mapping


def nyu40_ids_of_labels(labels: list[str], label_map: dict[str, int] | None) -> tuple[np.ndarray, list[str]]:
    """NYU40 id of each raw label (-1 unknown) and the labels that found none.

    With a label map, each label is looked up in it. Without one, labels are read as NYU40 names,
    but only if all of them are: a partial guess would silently void the rest under the 18-class
    convention, so then every id is -1.
    """
    if label_map is not None:
        ids = [label_map.get(_label_key(label), 0) or -1 for label in labels]
    else:
        ids = [nyu40_id(label) or -1 for label in labels]
    unmapped = sorted({label for label, class_id in zip(labels, ids) if class_id < 0})
    if label_map is None and unmapped:
        ids = [-1] * len(labels)
    return np.asarray(ids, np.int32), unmapped


def read_scannet_ground_truth(
    scene_dir: str | os.PathLike, n_vertices: int, label_map_path: str | os.PathLike | None = None
) -> GroundTruth | None:
    """The scene's ground truth, or None if it has none.

    ``<scene>.aggregation.json`` (with its segs.json) when present, else the benchmark-format
    ``<scene>.txt``. ``label_map_path`` (scannetv2-labels.combined.tsv) maps aggregation.json's raw
    category names to NYU40 ids; the txt carries its own.
    """
    scene_dir = Path(scene_dir)
    agg_path = scene_dir / f"{scene_dir.name}.aggregation.json"
    txt_path = scene_dir / f"{scene_dir.name}.txt"
    if agg_path.is_file():
        return _read_aggregation_ground_truth(scene_dir, n_vertices, label_map_path)
    if txt_path.is_file():
        gt = read_benchmark_ground_truth(txt_path, n_vertices)
        log.info("%s: %d ground-truth instances with NYU40 classes from the file", txt_path, len(gt.labels))
        if label_map_path is not None:
            log.info("ingest.label_map is not used for %s: it carries NYU40 ids itself", txt_path.name)
        return gt
    return None  # a segs.json alone is an over-segmentation, not ground truth


def _read_aggregation_ground_truth(scene_dir: Path, n_vertices: int, label_map_path) -> GroundTruth:
    """Instance positions are segGroups' positions sorted by objectId (their instance_id too)."""
    name = scene_dir.name
    segs_path = scene_dir / f"{name}_vh_clean_2.0.010000.segs.json"
    agg_path = scene_dir / f"{name}.aggregation.json"
    if not segs_path.is_file():
        raise InputError(segs_path, f"missing: {agg_path.name} refers to segments defined in this file")
    segs = _read_json(segs_path)
    agg = _read_json(agg_path)
    if "segIndices" not in segs:
        raise InputError(segs_path, "has no 'segIndices' list")
    seg_indices = np.asarray(segs["segIndices"], np.int64)
    if seg_indices.shape != (n_vertices,):
        raise InputError(segs_path, f"segIndices has {seg_indices.size} entries but the mesh has {n_vertices} vertices")
    groups = agg.get("segGroups")
    if not isinstance(groups, list):
        raise InputError(agg_path, "has no 'segGroups' list")
    groups = sorted(groups, key=lambda g: g.get("objectId", g.get("id", 0)))
    segment_to_instance: dict[int, int] = {}
    labels = []
    for instance_id, group in enumerate(groups):
        if "segments" not in group or "label" not in group:
            raise InputError(agg_path, f"segGroup {instance_id} lacks 'segments' or 'label'")
        labels.append(str(group["label"]))
        for segment in group["segments"]:
            # ScanNet's own files very rarely list a segment twice; the first group wins.
            segment_to_instance.setdefault(int(segment), instance_id)
    unique_segments, inverse = np.unique(seg_indices, return_inverse=True)
    lookup = np.array([segment_to_instance.get(int(s), -1) for s in unique_segments], np.int32)
    label_map = None if label_map_path is None else read_label_map(label_map_path)
    nyu40, unmapped = nyu40_ids_of_labels(labels, label_map)
    if label_map is not None:
        nyu40_source = f"label_map {Path(label_map_path).name}"
        log.info("%s: NYU40 classes from the label map %s", agg_path, label_map_path)
        if unmapped:
            log.warning("%s: raw categories not in the label map (unknown class): %s", agg_path, unmapped[:10])
    elif labels and not unmapped:
        nyu40_source = "raw names"
        log.info("%s: no ingest.label_map; every raw category is an NYU40 name, used as the class", agg_path)
    else:
        nyu40_source = ""
        log.warning(
            "%s: no ingest.label_map and raw categories %s are not NYU40 names: NYU40 classes unknown, so "
            "evaluation's gt_classes 'auto' scores all objects; set ingest.label_map to ScanNet's "
            "scannetv2-labels.combined.tsv for the 18-class benchmark convention", agg_path, unmapped[:10],
        )
    return GroundTruth(
        instance=lookup[inverse.ravel()].astype(np.int32),
        labels=labels,
        nyu40=nyu40,
        instance_id=np.arange(len(labels), dtype=np.int64),
        source="aggregation.json",
        nyu40_source=nyu40_source,
    )

@dataclass
class Boxes:
    box_min: np.ndarray  # (B, 3)
    box_max: np.ndarray  # (B, 3)
    labels: list[str]
    instance: np.ndarray  # (B,) GT instance id of each box, -1 if unknown


def read_boxes_json(path: str | os.PathLike) -> Boxes:
    """boxes.json: {"boxes": [{"center": [x,y,z], "size": [dx,dy,dz], "label": str, "instance_id": int?}]}.

    Axis-aligned, metres, scene frame; order is significant (outputs refer to boxes by index).
    """
    path = Path(path)
    data = _read_json(path)
    entries = data.get("boxes") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputError(path, "must be an object with a 'boxes' list")
    centers, sizes, labels, instances = [], [], [], []
    for index, entry in enumerate(entries):
        try:
            center = np.asarray(entry["center"], np.float64)
            size = np.asarray(entry["size"], np.float64)
        except (KeyError, TypeError, ValueError):
            raise InputError(path, f"box {index} needs numeric 'center' and 'size' lists") from None
        if center.shape != (3,) or size.shape != (3,) or not np.all(np.isfinite(np.r_[center, size])):
            raise InputError(path, f"box {index}: 'center' and 'size' must be 3 finite numbers each")
        if np.any(size < 0):
            raise InputError(path, f"box {index} has a negative size {size.tolist()}")
        centers.append(center)
        sizes.append(size)
        labels.append(str(entry.get("label", "object")))
        instances.append(int(entry.get("instance_id", -1)))
    centers = np.asarray(centers, np.float64).reshape(-1, 3)
    sizes = np.asarray(sizes, np.float64).reshape(-1, 3)
    return Boxes(centers - sizes / 2, centers + sizes / 2, labels, np.asarray(instances, np.int32))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(path, f"unreadable ({exc})") from None
