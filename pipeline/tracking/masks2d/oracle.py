"""Oracle masks from rendered ground truth, with controllable granularity noise (experiments, tests).

Synthetic scenes carry ``instance/<frame id>.png`` (uint16, objectId + 1, 0 = nothing). Each object
seen in the frame becomes one mask, then the mask set is degraded the way automatic generators
disagree about granularity, independently in every frame:

* merge: with probability ``p_merge`` an object is joined with one randomly chosen object that
  touches it in the image (each object takes part in at most one merge per frame);
* split: with probability ``p_split`` a (not merged) object is cut into 2..``max_parts`` parts by
  angular sectors around its centroid with a random start angle (two parts: a random straight cut).

Noise is seeded by (``seed``, frame id), so a run is reproducible and frames are independent.
"""

from __future__ import annotations

import numpy as np

from pipeline.tracking.masks2d.base import FrameInput, MaskGenerator, MaskSet
from pipeline.params import ORACLE_MASKS

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(ORACLE_MASKS)  # keyframe_masks.oracle


def touching_pairs(objects: np.ndarray) -> set[tuple[int, int]]:
    """Unordered pairs of object ids (>= 0) that are 4-neighbours somewhere in the image."""
    pairs = set()
    for a, b in ((objects[:, :-1], objects[:, 1:]), (objects[:-1, :], objects[1:, :])):
        differ = (a != b) & (a >= 0) & (b >= 0)
        if np.any(differ):
            lo = np.minimum(a[differ], b[differ]).astype(np.int64)
            hi = np.maximum(a[differ], b[differ]).astype(np.int64)
            for x, y in np.unique(np.stack([lo, hi], axis=1), axis=0):
                pairs.add((int(x), int(y)))
    return pairs


def split_by_sectors(mask: np.ndarray, n_parts: int, start_angle: float) -> list[np.ndarray]:
    """Cut a mask into ``n_parts`` angular sectors around its centroid (non-empty parts only)."""
    rows, cols = np.nonzero(mask)
    angle = np.arctan2(rows - rows.mean(), cols - cols.mean())
    sector = (np.floor(((angle - start_angle) % (2 * np.pi)) / (2 * np.pi / n_parts))).astype(np.int64)
    sector = np.minimum(sector, n_parts - 1)
    parts = []
    for part in range(n_parts):
        chosen = sector == part
        if np.any(chosen):
            piece = np.zeros_like(mask)
            piece[rows[chosen], cols[chosen]] = True
            parts.append(piece)
    return parts


def noisy_object_masks(objects: np.ndarray, rng: np.random.Generator, p_split: float, p_merge: float,
                       max_parts: int = 2, min_area: int = 1) -> list[np.ndarray]:
    """Masks of the objects in an objectId map (-1 = nothing) after random merges and splits."""
    ids, counts = np.unique(objects[objects >= 0], return_counts=True)
    ids = ids[counts >= max(min_area, 1)]
    groups: list[list[int]] = []
    merged: set[int] = set()
    if p_merge > 0 and len(ids) > 1:
        neighbours: dict[int, list[int]] = {int(i): [] for i in ids}
        for a, b in sorted(touching_pairs(objects)):
            if a in neighbours and b in neighbours:
                neighbours[a].append(b)
                neighbours[b].append(a)
        for obj in rng.permutation(ids):
            obj = int(obj)
            if obj in merged or rng.random() >= p_merge:
                continue
            free = [n for n in neighbours[obj] if n not in merged]
            if free:
                other = free[int(rng.integers(len(free)))]
                groups.append([obj, other])
                merged.update((obj, other))
    groups.extend([int(i)] for i in ids if int(i) not in merged)
    masks = []
    for group in groups:
        mask = np.isin(objects, group)
        if len(group) == 1 and p_split > 0 and rng.random() < p_split:
            n_parts = int(rng.integers(2, max(2, max_parts) + 1))
            masks.extend(split_by_sectors(mask, n_parts, float(rng.uniform(0, 2 * np.pi))))
        else:
            masks.append(mask)
    return [m for m in masks if m.sum() >= max(min_area, 1)]


class OracleGenerator(MaskGenerator):
    name = "oracle"

    def __init__(self, params: dict | None = None, device: str = "cpu"):
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        for key in ("p_split", "p_merge"):
            if not 0 <= float(self.params[key]) <= 1:
                raise ValueError(f"oracle {key} must be a probability in [0, 1], got {self.params[key]}")

    def generate(self, frame: FrameInput) -> MaskSet:
        if frame.ground_truth is None:
            raise ValueError("the oracle generator needs the frame's ground-truth instance map")
        objects = frame.ground_truth()
        p = self.params
        rng = np.random.default_rng([int(p["seed"]), abs(int(frame.frame_id))])
        masks = noisy_object_masks(objects, rng, float(p["p_split"]), float(p["p_merge"]), int(p["max_parts"]),
                                   int(p["min_area"]))
        height, width = objects.shape
        if not masks:
            return MaskSet.empty(height, width)
        return MaskSet(np.stack(masks), np.ones(len(masks), np.float32))
