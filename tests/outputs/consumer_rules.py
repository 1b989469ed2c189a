"""The loading rules of the tools our exports are for, restated from their public code (our own code).

Each ``load_*`` reads our files the way the consumer does and returns what it would train on (or
score); a broken rule raises AssertionError naming it. Sources (read for these restatements):

- SPFormer (github.com/sunjiahao1999/SPFormer): spformer/dataset/scannetv2.py (ScanNetDataset:
  load, transform_train/test, get_cropped_inst_label, get_instance3D, __getitem__), configs/
  spf_scannet.yaml (data_root/prefix/suffix, num_class 18), data/scannetv2/prepare_data_inst.py.
- Mask3D (github.com/JonasSchult/Mask3D): datasets/semseg.py (SemanticSegmentationDataset:
  database yaml, _select_correct_labels, _remap_from_zero, __getitem__ column split),
  datasets/utils.py (voxelize, get_instance_masks), conf/data/datasets/scannet.yaml
  (filter_out_classes [0, 1], label_offset 2), conf/data/indoor.yaml (num_labels 20, ignore 255),
  models/criterion.py (class loss ignore_index 253).
- OneFormer3D (github.com/filaPro/oneformer3d) on mmdetection3d: configs/oneformer3d_1xb4_scannet.py
  (ann_file, data_prefix, load_dim 6, PointSegClassMapping, AddSuperPointAnnotations with
  num_classes 20 and stuff_classes [0, 1]), oneformer3d/loading.py (super points as int64),
  oneformer3d/transforms_3d.py (AddSuperPointAnnotations), oneformer3d/scannet_dataset.py;
  mmdetection3d mmdet3d/datasets/seg3d_dataset.py (seg_label_mapping), mmdet3d/datasets/transforms/
  loading.py (np.fromfile float32 / int64), mmengine BaseDataset (info dict with metainfo and data_list).
- ScanNet benchmark (github.com/ScanNet/ScanNet): BenchmarkScripts/3d_evaluation/
  evaluate_semantic_instance.py (VALID_CLASS_IDS, min_region_sizes 100, assign_instances_for_scan),
  BenchmarkScripts/util_3d.py (read_instance_prediction_file, load_ids, get_instances).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
import yaml

BENCHMARK_CLASS_IDS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)  # VALID_CLASS_IDS
TWENTY_CLASS_IDS = (1, 2) + BENCHMARK_CLASS_IDS  # SPFormer's remapper, Mask3D validation, mmdet3d seg_valid_class_ids
N_OBJECT_CLASSES = 18


def superpoint_majority(masks: np.ndarray, superpoint: np.ndarray) -> np.ndarray:
    """(K, S) bool: scatter_mean of each point mask over superpoints > 0.5 (SPFormer get_instance3D,
    OneFormer3D AddSuperPointAnnotations)."""
    superpoint = np.asarray(superpoint)
    n_sp = int(superpoint.max()) + 1
    size = np.bincount(superpoint, minlength=n_sp)
    inside = np.stack([np.bincount(superpoint[m], minlength=n_sp) for m in masks]) if len(masks) else np.zeros((0, n_sp))
    return inside / np.maximum(size, 1) > 0.5


# ----------------------------------------------------------------------------------------------
# SPFormer


def load_spformer(data_root, prefix: str = "train", suffix: str = "_inst_nostuff.pth") -> dict[str, dict]:
    """Scene -> {labels (K,) class 0..17, masks (K, N), spmasks (K, S)} as ScanNetDataset builds them."""
    files = sorted(Path(data_root, prefix).glob("*" + suffix))  # get_filenames: glob(data_root/prefix/*suffix)
    assert files, f"SPFormer: no {prefix}/*{suffix} under {data_root}"
    scenes = {}
    for path in files:
        # SPFormer pins torch 1.x, whose torch.load unpickles numpy arrays; newer torch needs weights_only=False.
        data = torch.load(path, weights_only=False)
        assert isinstance(data, tuple) and len(data) == 5, "SPFormer: with_label load() unpacks 5 elements"
        for element in data:  # __getitem__: torch.from_numpy on each; transforms use numpy ops
            assert isinstance(element, np.ndarray), f"SPFormer: {type(element).__name__} is not a numpy array"
        xyz, rgb, superpoint, semantic, instance = data
        n = len(xyz)
        assert xyz.shape == (n, 3) and rgb.shape == (n, 3) and xyz.dtype.kind == "f" and rgb.dtype.kind == "f"
        assert superpoint.shape == semantic.shape == instance.shape == (n,)
        assert superpoint.dtype.kind in "iu", "SPFormer: superpoints index torch_scatter (integers)"
        assert np.abs(rgb).max() <= 1.0 + 1e-6, "SPFormer: colours are scaled to [-1, 1] (prepare_data_inst.py)"
        rgb += np.random.randn(3) * 0.1  # transform_train adds colour noise in place: must be a float array
        superpoint = np.unique(superpoint, return_inverse=True)[1]  # transform_test
        instance = _spformer_compact(instance.copy())
        semantic = torch.from_numpy(semantic).long()
        semantic = torch.where(semantic < 2, -100, semantic - 2).numpy()  # __getitem__: wall/floor/ignored -> -100
        instance = torch.from_numpy(instance).long().numpy()
        labels, masks = [], []
        for i in range(int(instance.max()) + 1):  # get_instance3D
            idx = instance == i
            assert len(np.unique(semantic[idx])) == 1, f"SPFormer: instance {i} needs exactly one semantic label"
            if semantic[idx][0] == -100:
                continue  # dropped: no trainable class
            labels.append(int(semantic[idx][0]))
            masks.append(idx)
        masks = np.asarray(masks, bool).reshape(len(masks), n)
        labels = np.asarray(labels, np.int64)
        assert ((labels >= 0) & (labels < N_OBJECT_CLASSES)).all(), "SPFormer: classes 0..num_class-1 (18)"
        scenes[path.name[: -len(suffix)]] = {"labels": labels, "masks": masks,
                                             "spmasks": superpoint_majority(masks, superpoint)}
    return scenes


def _spformer_compact(instance: np.ndarray) -> np.ndarray:
    """get_cropped_inst_label: fills gaps in 0..max by moving the largest id down (-100 stays)."""
    j = 0
    while j < instance.max():
        if not (instance == j).any():
            instance[instance == instance.max()] = j
        j += 1
    return instance


# ----------------------------------------------------------------------------------------------
# Mask3D


def load_mask3d(data_dir, mode: str = "train", label_db_filepath=None, num_labels: int = 20,
                filter_out_classes=(0, 1), label_offset: int = 2, ignore_label: int = 255) -> dict[str, dict]:
    """Scene -> {labels (K,) target classes, masks (K, N)} as the dataset and get_instance_masks build them."""
    data_dir = Path(data_dir)
    database = yaml.safe_load((data_dir / f"{mode}_database.yaml").read_text())  # {mode}_database.yaml
    labels_db = yaml.safe_load(Path(label_db_filepath or data_dir / "label_database.yaml").read_text())
    valid = [k for k, v in labels_db.items() if v["validation"]]  # _select_correct_labels
    assert num_labels in (len(labels_db), len(valid)), f"Mask3D: num_labels {num_labels} matches neither list"
    keys = list(labels_db) if num_labels == len(labels_db) else valid
    mean_std = yaml.safe_load((data_dir / "color_mean_std.yaml").read_text())
    assert len(mean_std["mean"]) == 3 and len(mean_std["std"]) == 3, "Mask3D: color_mean_std.yaml mean/std of 3"
    scenes = {}
    for entry in database:
        assert len(entry["raw_filepath"].split("/")) >= 2, "Mask3D: raw_filepath.split('/')[-2] names the scene"
        points = np.load(entry["filepath"].replace("../../", ""))
        assert points.ndim == 2 and points.shape[1] == 12, f"Mask3D: (N, 12) expected, got {points.shape}"
        assert points.dtype == np.float32, "Mask3D: preprocessing saves float32"
        color, segments, labels = points[:, 3:6], points[:, 9], points[:, 10:12]
        assert color.min() >= 0 and color.max() <= 255, "Mask3D: colours 0..255 (cast to uint8 for albumentations)"
        labels = labels.astype(np.int32)
        semantic = labels[:, 0].copy()  # _remap_from_zero
        semantic[~np.isin(semantic, keys)] = ignore_label
        for i, k in enumerate(keys):
            semantic[labels[:, 0] == k] = i
        instance = labels[:, 1]
        segment = np.unique(segments, return_inverse=True)[1]  # voxelize: segments renumbered
        targets, masks = [], []
        for instance_id in np.unique(instance):  # get_instance_masks
            if instance_id == -1:
                continue
            mask = instance == instance_id
            label_id = semantic[mask][0]
            if label_id in filter_out_classes:
                continue
            targets.append(max(int(label_id) - label_offset, 0))
            masks.append(mask)
        assert segment.max() + 1 == len(np.unique(segment))
        scenes[entry["raw_filepath"].split("/")[-2]] = {
            "labels": np.asarray(targets, np.int64), "masks": np.asarray(masks, bool).reshape(len(masks), len(points))}
    return scenes


MASK3D_CLASS_IGNORE = 253  # models/criterion.py: cross_entropy(..., ignore_index=253) = 255 - label_offset


# ----------------------------------------------------------------------------------------------
# OneFormer3D / mmdetection3d


def load_mmdet3d(data_root, ann_file: str = "scannet_oneformer3d_infos_train.pkl") -> dict[str, dict]:
    """Scene -> {labels (K,) 0..17, masks (K, N), spmasks (K, S)} as OneFormer3D's train pipeline builds them."""
    data_root = Path(data_root)
    annotations = pickle.loads((data_root / ann_file).read_bytes())  # mmengine.load of a .pkl
    assert isinstance(annotations, dict), "mmengine BaseDataset: the annotation file must be a dict"
    assert "data_list" in annotations and "metainfo" in annotations, "mmengine: needs data_list and metainfo"
    # Seg3DDataset: seg_label_mapping over seg_all_class_ids 1..40, valid ids -> 0..19, others -> 20
    seg_label_mapping = np.full(41, 20, np.int64)
    seg_label_mapping[list(TWENTY_CLASS_IDS)] = np.arange(20)
    scenes = {}
    for info in annotations["data_list"]:
        prefix = {"pts": "points", "pts_instance_mask": "instance_mask", "pts_semantic_mask": "semantic_mask",
                  "sp_pts_mask": "super_points"}  # the config's data_prefix
        points = np.fromfile(data_root / prefix["pts"] / info["lidar_points"]["lidar_path"], np.float32)
        assert info["lidar_points"]["num_pts_feats"] == 6 and points.size % 6 == 0, "load_dim=6: x y z r g b"
        points = points.reshape(-1, 6)
        instance = np.fromfile(data_root / prefix["pts_instance_mask"] / info["pts_instance_mask_path"], np.int64)
        semantic = np.fromfile(data_root / prefix["pts_semantic_mask"] / info["pts_semantic_mask_path"], np.int64)
        sp = np.fromfile(data_root / prefix["sp_pts_mask"] / info["super_pts_path"], np.int64)
        assert len(instance) == len(semantic) == len(sp) == len(points), "one value per point in every .bin"
        assert semantic.min() >= 0 and semantic.max() <= 40, "PointSegClassMapping indexes a 41-long table"
        assert 0 <= points[:, 3:].min() and points[:, 3:].max() <= 255, "NormalizePointsColor_: (c - 127.5) / 127.5"
        semantic = seg_label_mapping[semantic]  # PointSegClassMapping
        # AddSuperPointAnnotations (num_classes 20, stuff_classes [0, 1])
        instance = instance.copy()
        instance[semantic == 20] = -1
        for stuff in (0, 1):
            instance[semantic == stuff] = -1
        ids = np.unique(instance)
        assert ids[0] == -1, "AddSuperPointAnnotations asserts that some point is in no instance"
        mapping = np.zeros(ids.max() + 2, np.int64)
        mapping[ids] = np.arange(len(ids)) - 1
        instance = mapping[instance]
        labels = np.asarray([semantic[instance == k][0] - 2 for k in range(len(ids) - 1)], np.int64)
        masks = np.asarray([instance == k for k in range(len(ids) - 1)], bool).reshape(len(ids) - 1, len(points))
        assert ((labels >= 0) & (labels < N_OBJECT_CLASSES)).all(), "instance classes 0..17"
        scene = Path(info["lidar_points"]["lidar_path"]).stem
        scenes[scene] = {"labels": labels, "masks": masks, "spmasks": superpoint_majority(masks, sp)}
    return scenes


# ----------------------------------------------------------------------------------------------
# ScanNet benchmark script


def read_benchmark_predictions(pred_file, pred_path, n_vertices: int, min_region_size: int = 100):
    """(masks (K, N), label ids (K,), scores (K,)) of the predictions the script scores: it reads every
    line (read_instance_prediction_file), then skips labels outside VALID_CLASS_IDS and masks under
    min_region_size vertices (assign_instances_for_scan)."""
    abs_pred_path = os.path.abspath(pred_path)
    masks, labels, scores = [], [], []
    for line in Path(pred_file).read_text().splitlines():
        parts = line.split(" ")
        assert len(parts) == 3, f"benchmark: 'path label confidence' separated by single spaces, got {line!r}"
        assert not os.path.isabs(parts[0]), "benchmark: mask paths are relative"
        mask_file = os.path.abspath(os.path.join(os.path.dirname(pred_file), parts[0]))
        assert os.path.commonprefix([mask_file, abs_pred_path]) == abs_pred_path, "mask outside pred_path"
        label_id, confidence = int(float(parts[1])), float(parts[2])
        if label_id not in BENCHMARK_CLASS_IDS:
            continue
        ids = np.array(open(mask_file).read().splitlines(), dtype=np.int64)  # util_3d.load_ids
        assert len(ids) == n_vertices, f"benchmark: {len(ids)} lines in {mask_file} for {n_vertices} vertices"
        mask = ids != 0
        if mask.sum() < min_region_size:
            continue
        masks.append(mask)
        labels.append(label_id)
        scores.append(confidence)
    return (np.asarray(masks, bool).reshape(len(masks), n_vertices), np.asarray(labels, np.int64),
            np.asarray(scores, np.float64))


def benchmark_ground_truth(gt_values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """util_3d.get_instances: each distinct non-zero value is an instance of class value // 1000;
    only VALID_CLASS_IDS are scored. Returns (per-vertex instance index, -1 = none; its class as
    'class<id>' or 'void' for classes the script does not score)."""
    values = np.asarray(gt_values, np.int64)
    codes, inverse = np.unique(values, return_inverse=True)
    index = inverse.ravel() - (1 if codes[0] == 0 else 0)
    instance = np.where(values == 0, -1, index)
    classes = [c // 1000 for c in codes if c != 0]
    return instance, [f"class{c}" if c in BENCHMARK_CLASS_IDS else "void" for c in classes]
