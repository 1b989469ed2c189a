"""Exports of per-point instance labels for other tools. HDF5 stays the canonical form.

- ScanNet instance-benchmark format: ``<scene>.txt`` lists one line per instance,
  ``predicted_masks/<scene>_<k>.txt <label_id> <score>``, and each mask file holds one 0/1 per
  mesh vertex. This is what ScanNet's ``evaluate_semantic_instance.py`` reads.
- Trainer files:
  * SPFormer / OneFormer3D-style ``<scene>.pth``: ``torch.save((xyz, rgb, superpoint,
    semantic_label, instance_label))`` with float32 xyz (N,3), float32 rgb scaled to [-1, 1],
    int64 superpoint (N,), int64 semantic and instance labels (N,), -100 where unlabelled (the
    ignore index those trainers use).
  * Mask3D-style ``<scene>.npy``: float32 (N, 12) with columns x y z r g b nx ny nz segment_id
    semantic_label instance_label (instance -1 / semantic -1 = unlabelled), colours 0..255.
- A coloured ``.ply`` (one colour per instance, grey for unlabelled) for MeshLab and Open3D.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.ply import write_ply

UNLABELLED_COLOR = (160, 160, 160)
TRAINER_IGNORE_INDEX = -100


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


def write_scannet_benchmark(out_dir, scene: str, point_instance: np.ndarray, scores: np.ndarray | None = None,
                            label_ids: np.ndarray | None = None, default_label_id: int = 1) -> Path:
    """Write ``out_dir/<scene>.txt`` and ``out_dir/predicted_masks/<scene>_<k>.txt``; returns the txt path.

    Instance ids without points are skipped; a class-agnostic export uses ``default_label_id``.
    """
    out_dir = Path(out_dir)
    masks_dir = out_dir / "predicted_masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    point_instance = np.asarray(point_instance)
    ids = np.unique(point_instance[point_instance >= 0])
    lines = []
    for k in ids:
        relative = f"predicted_masks/{scene}_{int(k):03d}.txt"
        _atomic_write_text(out_dir / relative, "\n".join("1" if m else "0" for m in point_instance == k) + "\n")
        score = 1.0 if scores is None else float(scores[k])
        label = default_label_id if label_ids is None else int(label_ids[k])
        lines.append(f"{relative} {label} {score:.6f}")
    summary = out_dir / f"{scene}.txt"
    _atomic_write_text(summary, "\n".join(lines) + ("\n" if lines else ""))
    return summary


def read_scannet_benchmark(summary_path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(masks (K, N) bool, label ids (K,), scores (K,)) from a ScanNet-format prediction file."""
    summary_path = Path(summary_path)
    masks, labels, scores = [], [], []
    for line in summary_path.read_text().splitlines():
        if not line.strip():
            continue
        relative, label, score = line.split()
        masks.append(np.loadtxt(summary_path.parent / relative, dtype=np.int64) > 0)
        labels.append(int(label))
        scores.append(float(score))
    return np.asarray(masks, bool), np.asarray(labels, np.int64), np.asarray(scores, np.float64)


def spformer_sample(vertices, colors, superpoint, point_instance, semantic=None) -> tuple:
    """The tuple SPFormer-style trainers load: (xyz, rgb in [-1, 1], superpoint, semantic, instance)."""
    instance = np.asarray(point_instance, np.int64)
    instance = np.where(instance >= 0, instance, TRAINER_IGNORE_INDEX)
    if semantic is None:  # class-agnostic: every labelled point is foreground class 0
        semantic = np.where(instance >= 0, 0, TRAINER_IGNORE_INDEX)
    return (
        np.asarray(vertices, np.float32),
        np.asarray(colors, np.float32) / 127.5 - 1.0,
        np.asarray(superpoint, np.int64),
        np.asarray(semantic, np.int64),
        instance,
    )


def mask3d_array(vertices, colors, normals, superpoint, point_instance, semantic=None) -> np.ndarray:
    """(N, 12) float32: x y z r g b nx ny nz segment semantic instance (Mask3D's preprocessed layout)."""
    instance = np.asarray(point_instance)
    if semantic is None:
        semantic = np.where(instance >= 0, 0, -1)
    return np.column_stack([vertices, colors, normals, superpoint, semantic, instance]).astype(np.float32)


def write_spformer(path, sample: tuple) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in sample), tmp)
    os.replace(tmp, path)
    return path


def write_mask3d(path, array: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return path


def write_colored_ply(path, vertices, point_instance, faces=None) -> Path:
    write_ply(path, vertices, label_colors(point_instance), faces)
    return Path(path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
