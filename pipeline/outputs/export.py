"""Exports of per-point instance labels for trainers and ScanNet's benchmark script. HDF5 stays canonical.

Every export follows its consumer's own loading code (the files named in brackets), not ours; the
tests restate those rules (``tests/outputs/consumer_rules.py``) and run our files through them.

Classes
    Every exported instance gets an NYU40 id that is one of the benchmark's 18 object classes
    (``SCANNET18_IDS``), because each consumer drops or ignores every other class:

    * Box mode (``instance_class`` holds box labels): label -> ``class_map`` (raw name -> NYU40
      name, as ScanNet's ``scannetv2-labels.combined.tsv`` maps raw names) -> NYU40 id. A name that
      is neither an NYU40 name nor in ``class_map`` is an error naming the box. An NYU40 class
      outside the 18 (shelves, books, otherprop, ...) is exported as ``other_class`` (default
      otherfurniture, the benchmark's catch-all) so it stays a trainable object; with
      ``other_class=None`` it keeps its NYU40 id and the consumers drop it, as ScanNet's own
      preprocessing does.
    * Class-agnostic labels (unsupervised ``instance_class`` "object", or an artifact without
      classes): NYU40 3 (cabinet), the first of the 18, so each consumer sees class index 0,
      which is also the only class of a one-class (class-agnostic) trainer config.

Files of one scene (``write_scene_exports``); each consumer folder is a one-scene dataset in the
layout its trainer reads, and ``collect_exports`` merges several into one dataset:

* ``scannet/<scene>.txt`` + ``scannet/predicted_masks/<scene>_<k>.txt`` [ScanNet
  BenchmarkScripts/3d_evaluation/evaluate_semantic_instance.py, util_3d.py]: one line
  ``relative/path label_id score`` (single spaces) per mask; one 0/1 line per mesh vertex.
* ``spformer/train/<scene>_inst_nostuff.pth`` [SPFormer spformer/dataset/scannetv2.py,
  data/scannetv2/prepare_data_inst.py]: ``torch.save`` of a tuple of numpy arrays: xyz (centred,
  as SPFormer's preparation does), rgb / 127.5 - 1, superpoint, semantic (SPFormer's 20-class
  index: 0 wall, 1 floor, 2 + position in the 18), instance 0..K-1; -100 where unlabelled.
* ``mask3d/train/<scene>.npy`` + ``train_database.yaml``, ``label_database.yaml``,
  ``color_mean_std.yaml`` [Mask3D datasets/preprocessing/scannet_preprocessing.py,
  base_preprocessing.py, datasets/semseg.py, datasets/utils.py]: float32 (N, 12)
  x y z r g b nx ny nz segment nyu40_id instance, colours 0..255; NYU40 0 and instance -1 where
  unlabelled.
* ``mmdet3d/{points,instance_mask,semantic_mask,super_points}/<scene>.bin`` +
  ``scannet_oneformer3d_infos_train.pkl`` [mmdetection3d tools/dataset_converters/
  scannet_data_utils.py, update_infos_to_v2.py, mmdet3d/datasets/seg3d_dataset.py; OneFormer3D
  oneformer3d/loading.py, transforms_3d.py]: float32 (N, 6) xyz rgb; int64 instance 1..K (0 =
  none), NYU40 id (0 = none), superpoint.
* ``<scene>_instances.ply`` (one colour per instance, grey for unlabelled) and ``instances.tsv``
  (what each exported instance was made from and the class it got).
"""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from pipeline.io.atomic import atomic_path, write_bytes
from pipeline.params import ExportParams
from pipeline.io.nyu40 import NYU40_NAMES, SCANNET18_IDS, nyu40_id, nyu40_name
from pipeline.io.ply import write_ply

UNLABELLED_COLOR = (160, 160, 160)
AGNOSTIC_CLASS_NAME = "object"  # instance_class of unsupervised pseudo-labels
AGNOSTIC_NYU40_ID = 3  # first of the 18: class index 0 in every consumer
DEFAULT_OTHER_CLASS = ExportParams.other_class  # export.other_class (pipeline/params.py)
# The raw names of the generated demo rooms that are not NYU40 names, mapped as ScanNet's label table maps them.
DEFAULT_CLASS_MAP = {"shelf": "shelves", "book": "books", "cup": "otherprop"}
TRAINER_IGNORE_INDEX = -100  # SPFormer's ignore label
# SPFormer's (and Mask3D's validation) 20 classes: wall, floor, then the 18; position = class index.
TWENTY_CLASS_IDS: tuple[int, ...] = (1, 2) + SCANNET18_IDS
BENCHMARK_MIN_VERTICES = 100  # evaluate_semantic_instance.py skips smaller predicted masks
# mmdetection3d's names of the 18 classes (its detection infos call NYU40 39 "garbagebin").
MMDET3D_CLASSES = ("cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter",
                   "desk", "curtain", "refrigerator", "showercurtrain", "toilet", "sink", "bathtub", "garbagebin")
MMDET3D_ANN_FILE = "scannet_oneformer3d_infos_train.pkl"  # the name OneFormer3D's ScanNet config reads
SPLIT = "train"  # pseudo-labels are training data


# ----------------------------------------------------------------------------------------------
# Instances and their classes (pure).


@dataclass(frozen=True)
class ExportInstances:
    """Per-point instances renumbered 0..K-1 (ids without points dropped), one class and score each."""

    point_instance: np.ndarray  # (N,) int64, -1 = none
    nyu40: np.ndarray  # (K,) int64 NYU40 id of each instance
    score: np.ndarray  # (K,) float64
    source_id: np.ndarray  # (K,) the instance's id in the labels artifact (the box index in box mode)
    source_class: np.ndarray  # (K,) str: the box label, or "object"
    class_agnostic: bool

    @property
    def n_instances(self) -> int:
        return len(self.nyu40)


def _map_key(name: str) -> str:
    return str(name).strip().lower()


def other_class_id(other_class: str | None) -> int | None:
    """NYU40 id of ``other_class`` (must be one of the 18 benchmark classes); None stays None."""
    if other_class is None:
        return None
    class_id = nyu40_id(other_class)
    if class_id not in SCANNET18_IDS:
        names = ", ".join(nyu40_name(c) for c in SCANNET18_IDS)
        raise ValueError(f"export other_class {other_class!r} is not one of the benchmark's 18 classes ({names})")
    return class_id


def box_class_ids(labels: Sequence[str], class_map: Mapping[str, str] | None = None,
                  other_class: str | None = DEFAULT_OTHER_CLASS) -> np.ndarray:
    """(K,) NYU40 id of each box label (see the module docstring); an unknown name is an error naming the box."""
    class_map = {_map_key(k): v for k, v in (class_map or {}).items()}
    other = other_class_id(other_class)
    ids = np.zeros(len(labels), np.int64)
    for box, label in enumerate(map(str, labels)):
        mapped = str(class_map.get(_map_key(label), label))
        class_id = nyu40_id(mapped)
        if class_id is None:
            via = f" (mapped to {mapped!r} by class_map)" if mapped != label else ""
            raise ValueError(f"box {box} has label {label!r}{via}, which is not an NYU40 class name; add it to "
                             f"export.class_map (raw name -> NYU40 name, e.g. {{{label}: otherprop}})")
        ids[box] = class_id if class_id in SCANNET18_IDS or other is None else other
    return ids


def is_class_agnostic(instance_class: Sequence[str] | None) -> bool:
    """Labels without classes, or whose every class is the unsupervised marker "object"."""
    return instance_class is None or all(str(c) == AGNOSTIC_CLASS_NAME for c in instance_class)


def compact_ids(point_instance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-point ids renumbered 0..K-1 in id order, -1 = none; the original id of each)."""
    point_instance = np.asarray(point_instance, np.int64)
    labelled = point_instance >= 0
    ids, inverse = np.unique(point_instance[labelled], return_inverse=True)
    compact = np.full(len(point_instance), -1, np.int64)
    compact[labelled] = inverse.ravel()
    return compact, ids


def export_instances(point_instance: np.ndarray, scores: np.ndarray | None = None,
                     instance_class: Sequence[str] | None = None, class_map: Mapping[str, str] | None = None,
                     other_class: str | None = DEFAULT_OTHER_CLASS) -> ExportInstances:
    """Renumbered instances with an NYU40 class each (box labels, or the class-agnostic convention)."""
    compact, ids = compact_ids(point_instance)
    agnostic = is_class_agnostic(instance_class)
    for name, values in (("instance_score", scores), ("instance_class", None if agnostic else instance_class)):
        if values is not None and len(ids) and ids[-1] >= len(values):
            raise ValueError(f"instance id {int(ids[-1])} has no {name} entry ({len(values)} entries)")
    if agnostic:
        nyu40 = np.full(len(ids), AGNOSTIC_NYU40_ID, np.int64)
        source_class = np.full(len(ids), AGNOSTIC_CLASS_NAME)
    else:
        nyu40 = box_class_ids(list(instance_class), class_map, other_class)[ids]  # every box checked, used or not
        source_class = np.asarray(instance_class, dtype=str)[ids]
    score = np.ones(len(ids)) if scores is None else np.asarray(scores, np.float64)[ids]
    return ExportInstances(compact, nyu40, score, ids, source_class, agnostic)


def per_point_class(instances: ExportInstances, unlabelled: int) -> np.ndarray:
    """(N,) int64 NYU40 id of each point's instance; ``unlabelled`` where it has none."""
    inst = instances.point_instance
    return np.where(inst >= 0, instances.nyu40[np.maximum(inst, 0)] if instances.n_instances else unlabelled,
                    unlabelled).astype(np.int64)


def consecutive(ids: np.ndarray) -> np.ndarray:
    """Ids renumbered 0..S-1 in order (superpoints / segments, as the consumers' preparations leave them)."""
    return np.unique(np.asarray(ids), return_inverse=True)[1].ravel().astype(np.int64)


def instances_without_superpoint_majority(point_instance: np.ndarray, superpoint: np.ndarray) -> np.ndarray:
    """Instances that hold more than half of no superpoint. SPFormer and OneFormer3D train on
    superpoint masks (mean membership > 0.5), so such an instance is an empty target for them."""
    inst = np.asarray(point_instance, np.int64)
    sp = consecutive(superpoint)
    labelled = inst >= 0
    if not labelled.any():
        return np.zeros(0, np.int64)
    n_inst, n_sp = int(inst.max()) + 1, int(sp.max()) + 1
    counts = np.zeros((n_inst, n_sp), np.int64)
    np.add.at(counts, (inst[labelled], sp[labelled]), 1)
    majority = counts * 2 > np.bincount(sp, minlength=n_sp)[None, :]
    return np.flatnonzero(~majority.any(axis=1))


# ----------------------------------------------------------------------------------------------
# Per-consumer contents (pure).


def twenty_class_index(nyu40: np.ndarray) -> np.ndarray:
    """SPFormer's semantic label of NYU40 ids: position in ``TWENTY_CLASS_IDS``, else -100."""
    table = np.full(max(NYU40_NAMES) + 1, TRAINER_IGNORE_INDEX, np.int64)
    table[list(TWENTY_CLASS_IDS)] = np.arange(len(TWENTY_CLASS_IDS))
    return table[np.asarray(nyu40, np.int64)]


def spformer_sample(vertices, colors, superpoint, instances: ExportInstances) -> tuple[np.ndarray, ...]:
    """(xyz, rgb, superpoint, semantic, instance) as SPFormer's prepare_data_inst.py saves them."""
    xyz = np.asarray(vertices, np.float64)
    xyz = (xyz - xyz.mean(axis=0)) if len(xyz) else xyz
    inst = instances.point_instance
    semantic = np.where(inst >= 0, twenty_class_index(per_point_class(instances, 0)), TRAINER_IGNORE_INDEX)
    return (
        xyz.astype(np.float32),
        (np.asarray(colors, np.float32) / 127.5 - 1.0).astype(np.float32),
        consecutive(superpoint),
        semantic.astype(np.int64),
        np.where(inst >= 0, inst, TRAINER_IGNORE_INDEX).astype(np.int64),
    )


def mask3d_array(vertices, colors, normals, superpoint, instances: ExportInstances) -> np.ndarray:
    """(N, 12) float32 in Mask3D's preprocessed column order (see the module docstring)."""
    return np.column_stack([
        np.asarray(vertices, np.float64), np.asarray(colors, np.float64), np.asarray(normals, np.float64),
        consecutive(superpoint), per_point_class(instances, 0), instances.point_instance,
    ]).astype(np.float32)


def mask3d_database_entry(scene: str, npy_path, colors) -> dict:
    """One entry of Mask3D's ``train_database.yaml``. ``color_std`` holds the mean of squared colours,
    as Mask3D's preprocessing stores it (its compute_color_mean_std takes the root later)."""
    rgb = np.asarray(colors, np.float64) / 255.0
    return {
        "filepath": str(Path(npy_path).resolve()),
        "raw_filepath": f"{scene}/{scene}_vh_clean_2.ply",  # Mask3D names the scene by the parent folder
        "scene": scene,
        "file_len": int(len(rgb)),
        "color_mean": [float(v) for v in rgb.mean(axis=0)] if len(rgb) else [0.0, 0.0, 0.0],
        "color_std": [float(v) for v in (rgb ** 2).mean(axis=0)] if len(rgb) else [0.0, 0.0, 0.0],
    }


def mask3d_color_mean_std(entries: Sequence[Mapping]) -> dict:
    """Mask3D's color_mean_std.yaml from database entries: scene-averaged mean, sqrt(E[c^2] - mean^2)."""
    mean = np.mean([e["color_mean"] for e in entries], axis=0)
    square = np.mean([e["color_std"] for e in entries], axis=0)
    std = np.sqrt(np.maximum(square - mean ** 2, 0.0))
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def mask3d_label_database() -> dict:
    """Mask3D's label_database.yaml for ScanNet: 0 'empty' and NYU40 1..40, the 20 validation classes marked."""
    palette = instance_colors(max(NYU40_NAMES) + 1)
    database = {0: {"name": "empty", "validation": False, "color": [0, 0, 0]}}
    for class_id, name in sorted(NYU40_NAMES.items()):
        database[class_id] = {"name": name.replace(" ", "_"), "validation": class_id in TWENTY_CLASS_IDS,
                              "color": [int(c) for c in palette[class_id]]}
    return database


def mmdet3d_arrays(vertices, colors, superpoint, instances: ExportInstances) -> dict[str, np.ndarray]:
    """The four per-scene .bin arrays, keyed by their folder name."""
    inst = instances.point_instance
    return {
        "points": np.column_stack([vertices, colors]).astype(np.float32),
        "instance_mask": np.where(inst >= 0, inst + 1, 0).astype(np.int64),
        "semantic_mask": per_point_class(instances, 0),
        "super_points": consecutive(superpoint),
    }


def mmdet3d_data_info(scene: str, vertices, instances: ExportInstances) -> dict:
    """One ``data_list`` entry in mmdetection3d's v2 info format (paths relative to data_prefix)."""
    vertices = np.asarray(vertices, np.float64)
    boxes = []
    for k in range(instances.n_instances):
        points = vertices[instances.point_instance == k]
        lo, hi = points.min(axis=0), points.max(axis=0)
        class_id = int(instances.nyu40[k])
        boxes.append({"bbox_3d": [float(v) for v in np.concatenate([(lo + hi) / 2, hi - lo])],
                      "bbox_label_3d": SCANNET18_IDS.index(class_id) if class_id in SCANNET18_IDS else -1})
    return {
        "lidar_points": {"num_pts_feats": 6, "lidar_path": f"{scene}.bin"},
        "pts_instance_mask_path": f"{scene}.bin",
        "pts_semantic_mask_path": f"{scene}.bin",
        "super_pts_path": f"{scene}.bin",
        "instances": boxes,
        "axis_align_matrix": np.eye(4).tolist(),  # our coordinates are the scene's own; no alignment
    }


def mmdet3d_annotations(data_list: Sequence[dict]) -> dict:
    """The info file mmengine's BaseDataset loads: a dict with ``metainfo`` and ``data_list``."""
    metainfo = {"categories": {name: i for i, name in enumerate(MMDET3D_CLASSES)}, "dataset": "scannet",
                "info_version": "1.1"}
    return {"metainfo": metainfo, "data_list": list(data_list)}


def benchmark_lines(scene: str, instances: ExportInstances) -> list[tuple[str, int, float]]:
    """(relative mask path, label id, score) per instance, in instance order."""
    return [(f"predicted_masks/{scene}_{k:03d}.txt", int(instances.nyu40[k]), float(instances.score[k]))
            for k in range(instances.n_instances)]


def class_agnostic_ground_truth(gt_values: np.ndarray, class_id: int = AGNOSTIC_NYU40_ID) -> np.ndarray:
    """Benchmark ground truth (``nyu40_id * 1000 + instance_id``) with every instance of the 18 classes
    moved to ``class_id``: the official script then scores class-agnostic masks class-agnostically.
    Other classes stay as they are (void for the script); instance ids are kept, so they stay distinct."""
    values = np.asarray(gt_values, np.int64)
    scored = np.isin(values // 1000, SCANNET18_IDS)
    return np.where(scored, class_id * 1000 + values % 1000, values)


# ----------------------------------------------------------------------------------------------
# Colours.


def instance_colors(n_instances: int, seed: int = 0) -> np.ndarray:
    """Distinct, saturated colours (golden-ratio hues), deterministic for a given count and seed."""
    hues = (np.arange(n_instances) * 0.618033988749895 + 0.1 + 0.37 * seed) % 1.0
    sat = 0.65 + 0.3 * ((np.arange(n_instances) * 7) % 3) / 2
    val = 0.95 - 0.25 * ((np.arange(n_instances) * 5) % 2)
    return (_hsv_to_rgb(hues, sat, val) * 255).round().astype(np.uint8)


def _hsv_to_rgb(h, s, v) -> np.ndarray:
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    rgb = np.zeros((len(h), 3))
    for k, (r, g, b) in enumerate(table):
        sel = i == k
        rgb[sel] = np.stack([np.broadcast_to(r, h.shape)[sel], np.broadcast_to(g, h.shape)[sel], np.broadcast_to(b, h.shape)[sel]], 1)
    return rgb


def label_colors(point_instance: np.ndarray) -> np.ndarray:
    """(N, 3) uint8: instance k gets colour k of ``instance_colors``; -1 gets grey."""
    point_instance = np.asarray(point_instance)
    n = int(point_instance.max(initial=-1)) + 1
    palette = np.vstack([instance_colors(n), np.asarray([UNLABELLED_COLOR], np.uint8)])
    return palette[np.where(point_instance >= 0, point_instance, n)]


# ----------------------------------------------------------------------------------------------
# Writers (file I/O). Every file goes to a temporary name in its folder and is renamed when complete.


def _atomic(path, write: Callable[[Path], None]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def _atomic_yaml(path, data) -> Path:
    import yaml

    return _atomic(path, lambda tmp: tmp.write_text(yaml.safe_dump(data, default_flow_style=False)))


def _atomic_pickle(path, data) -> Path:
    return _atomic(path, lambda tmp: tmp.write_bytes(pickle.dumps(data, protocol=4)))


_MASK_LINES = np.array([b"0\n", b"1\n"], dtype="S2")


def write_scannet_benchmark(out_dir, scene: str, instances: ExportInstances) -> Path:
    """``out_dir/<scene>.txt`` and its ``predicted_masks/`` files; stale masks of this scene are removed."""
    out_dir = Path(out_dir)
    lines = benchmark_lines(scene, instances)
    for k, (relative, _, _) in enumerate(lines):
        write_bytes(out_dir / relative, _MASK_LINES[(instances.point_instance == k).astype(np.intp)].tobytes())
    summary = write_bytes(out_dir / f"{scene}.txt",
                            "".join(f"{path} {label} {score:.6f}\n" for path, label, score in lines).encode())
    current = {Path(relative).name for relative, _, _ in lines}
    for old in (out_dir / "predicted_masks").glob(f"{scene}_*.txt"):
        if old.name not in current:
            old.unlink()
    return summary


def read_scannet_benchmark(summary_path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(masks (K, N) bool, label ids (K,), scores (K,)) from a ScanNet-format prediction file."""
    summary_path = Path(summary_path)
    masks, labels, scores = [], [], []
    for line in summary_path.read_text().splitlines():
        if not line.strip():
            continue
        relative, label, score = line.split()
        masks.append(np.loadtxt(summary_path.parent / relative, dtype=np.int64, ndmin=1) > 0)
        labels.append(int(label))
        scores.append(float(score))
    return np.asarray(masks, bool), np.asarray(labels, np.int64), np.asarray(scores, np.float64)


def write_spformer(path, sample: tuple[np.ndarray, ...]) -> Path:
    """``torch.save`` of the tuple of numpy arrays (SPFormer's loader calls torch.from_numpy on each)."""
    import torch

    return _atomic(path, lambda tmp: torch.save(tuple(np.ascontiguousarray(a) for a in sample), tmp))


def _save_npy(array: np.ndarray) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file handle: np.save would append .npy to the name
            np.save(handle, array)
    return write


def write_mask3d(folder, scene: str, array: np.ndarray, colors) -> Path:
    """``folder/train/<scene>.npy`` and a one-scene ``train_database.yaml`` with label and colour files."""
    folder = Path(folder)
    npy = _atomic(folder / SPLIT / f"{scene}.npy", _save_npy(np.asarray(array, np.float32)))
    entries = [mask3d_database_entry(scene, npy, colors)]
    _atomic_yaml(folder / "label_database.yaml", mask3d_label_database())
    _atomic_yaml(folder / "color_mean_std.yaml", mask3d_color_mean_std(entries))
    _atomic_yaml(folder / f"{SPLIT}_database.yaml", entries)
    return npy


def write_mmdet3d(folder, scene: str, arrays: Mapping[str, np.ndarray], data_info: dict) -> Path:
    """The four ``<kind>/<scene>.bin`` files (raw ``tofile`` bytes) and a one-scene info file."""
    folder = Path(folder)
    for kind, array in arrays.items():
        write_bytes(folder / kind / f"{scene}.bin", np.ascontiguousarray(array).tobytes())
    return _atomic_pickle(folder / MMDET3D_ANN_FILE, mmdet3d_annotations([data_info]))


def write_instances_table(path, scene: str, instances: ExportInstances) -> Path:
    """Tab-separated: what each exported instance was (source id and class) and the class it got."""
    header = "scene\tinstance\tsource_id\tsource_class\tnyu40_id\tnyu40_name\tscore\tpoints\n"
    counts = np.bincount(instances.point_instance[instances.point_instance >= 0], minlength=instances.n_instances)
    rows = [f"{scene}\t{k}\t{int(instances.source_id[k])}\t{instances.source_class[k]}\t{int(instances.nyu40[k])}\t"
            f"{nyu40_name(int(instances.nyu40[k]))}\t{instances.score[k]:.6f}\t{int(counts[k])}\n"
            for k in range(instances.n_instances)]
    return write_bytes(path, (header + "".join(rows)).encode())


def write_colored_ply(path, vertices, point_instance, faces=None) -> Path:
    write_ply(path, vertices, label_colors(point_instance), faces)
    return Path(path)


# ----------------------------------------------------------------------------------------------
# Several scenes' exports -> one dataset folder.

# Files that describe a whole dataset: merged (or rewritten), never copied.
_MASK3D_INDEX = ("mask3d/label_database.yaml", "mask3d/color_mean_std.yaml", f"mask3d/{SPLIT}_database.yaml")
_INDEX_FILES = set(_MASK3D_INDEX) | {f"mmdet3d/{MMDET3D_ANN_FILE}"}
CONSUMER_FOLDERS = ("scannet", "spformer", "mask3d", "mmdet3d")


def _link_or_copy(source: Path, target: Path) -> None:
    def place(tmp: Path) -> None:
        tmp.unlink()  # os.link wants a free name
        try:
            os.link(source, tmp)  # no second copy of large files; a later re-export replaces, never edits, them
        except OSError:
            shutil.copy2(source, tmp)
    _atomic(target, place)


def collect_exports(export_dirs: Iterable, out_dir) -> dict[str, int]:
    """Merge per-scene export folders (``results/<scene>/export``) into one dataset folder in each
    consumer's layout, with one merged index per consumer; returns the number of scenes per consumer.
    Two exports holding the same file (the same scene twice) are an error naming both."""
    import yaml

    out_dir = Path(out_dir)
    placed: dict[str, Path] = {}
    mask3d_entries: list[dict] = []
    mmdet3d_infos: list[dict] = []
    for export_dir in map(Path, export_dirs):
        for consumer in CONSUMER_FOLDERS:
            for source in sorted((export_dir / consumer).rglob("*")):
                relative = source.relative_to(export_dir).as_posix()
                if not source.is_file() or source.name.startswith(".") or relative in _INDEX_FILES:
                    continue
                if relative in placed:
                    raise ValueError(f"{source} and {placed[relative]} are both {relative}: the same scene exported twice?")
                placed[relative] = source
                _link_or_copy(source, out_dir / relative)
        database = export_dir / f"mask3d/{SPLIT}_database.yaml"
        if database.is_file():
            for entry in yaml.safe_load(database.read_text()) or []:
                target = out_dir / "mask3d" / SPLIT / Path(entry["filepath"]).name
                mask3d_entries.append({**entry, "filepath": str(target.resolve())})
        info = export_dir / f"mmdet3d/{MMDET3D_ANN_FILE}"
        if info.is_file():
            mmdet3d_infos += pickle.loads(info.read_bytes())["data_list"]
    if mask3d_entries:
        _atomic_yaml(out_dir / "mask3d/label_database.yaml", mask3d_label_database())
        _atomic_yaml(out_dir / "mask3d/color_mean_std.yaml", mask3d_color_mean_std(mask3d_entries))
        _atomic_yaml(out_dir / f"mask3d/{SPLIT}_database.yaml", mask3d_entries)
    if mmdet3d_infos:
        _atomic_pickle(out_dir / f"mmdet3d/{MMDET3D_ANN_FILE}", mmdet3d_annotations(mmdet3d_infos))
    return {
        "scannet": sum(1 for r in placed if r.startswith("scannet/") and r.count("/") == 1),
        "spformer": sum(1 for r in placed if r.startswith("spformer/")),
        "mask3d": len(mask3d_entries),
        "mmdet3d": len(mmdet3d_infos),
    }
