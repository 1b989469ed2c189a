"""Box partition for box supervision (BEEP3D): which boxes contain each point.

A point inside exactly one box takes that box's label (P^l, "labelled"); a point inside two or
more boxes is *ambiguous* (P^u) and is decided later by the teacher model; a point inside no box
is background. Boxes are axis-aligned, faces inclusive, and keep the scene's box order: every
box-mode output refers to a box by its index in that order.

Also here: the smallest-box rule (Box2Mask's heuristic: an ambiguous point goes to the smallest
box that contains it), used as the baseline and as the rescue for boxes left empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError
from pipeline.scene.geometry import points_in_boxes

BACKGROUND = -1  # point_box value: inside no box
AMBIGUOUS = -2  # point_box value: inside two or more boxes


@dataclass
class BoxPartition:
    """Membership of every point in the scene's boxes."""

    point_box: np.ndarray  # (N,) int32: the box of a P^l point, BACKGROUND or AMBIGUOUS
    n_containing: np.ndarray  # (N,) int32: how many boxes contain the point
    ambiguous_point: np.ndarray  # (P,) int32: point index of each (point, box) pair of P^u
    ambiguous_box: np.ndarray  # (P,) int32: box index of each pair (pairs sorted by point, then box)

    @property
    def n_points(self) -> int:
        return len(self.point_box)

    @property
    def labelled(self) -> np.ndarray:
        return self.point_box >= 0

    @property
    def ambiguous(self) -> np.ndarray:
        return self.point_box == AMBIGUOUS

    @property
    def background(self) -> np.ndarray:
        return self.point_box == BACKGROUND

    def membership(self, n_boxes: int) -> np.ndarray:
        """(N, B) bool: box b contains point n (rebuilt from the compact form)."""
        member = np.zeros((self.n_points, n_boxes), bool)
        rows = np.flatnonzero(self.labelled)
        member[rows, self.point_box[rows]] = True
        member[self.ambiguous_point, self.ambiguous_box] = True
        return member


def check_boxes(box_min: np.ndarray, box_max: np.ndarray, source=None) -> tuple[np.ndarray, np.ndarray]:
    """Validated (B, 3) float64 corners; raises InputError naming ``source`` on bad boxes."""
    box_min = np.asarray(box_min, np.float64).reshape(-1, 3)
    box_max = np.asarray(box_max, np.float64).reshape(-1, 3)
    if box_min.shape != box_max.shape:
        raise InputError(source, f"boxes/min has {len(box_min)} boxes but boxes/max has {len(box_max)}")
    bad = ~np.all(np.isfinite(box_min) & np.isfinite(box_max), axis=1)
    if np.any(bad):
        raise InputError(source, f"boxes {np.flatnonzero(bad)[:10].tolist()} have non-finite corners")
    inverted = np.any(box_min > box_max, axis=1)
    if np.any(inverted):
        raise InputError(source, f"boxes {np.flatnonzero(inverted)[:10].tolist()} have min > max")
    return box_min, box_max


def box_membership(points: np.ndarray, box_min: np.ndarray, box_max: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """(N, B) bool: box b contains point n (faces inclusive), computed in chunks of points."""
    points = np.asarray(points)
    member = np.zeros((len(points), len(box_min)), bool)
    if len(box_min) == 0:
        return member
    for start in range(0, len(points), chunk):
        member[start : start + chunk] = points_in_boxes(points[start : start + chunk], box_min, box_max)
    return member


def partition_from_membership(member: np.ndarray) -> BoxPartition:
    """Split points into P^l (one box), P^u (several) and background (none)."""
    member = np.asarray(member, bool)
    count = member.sum(axis=1).astype(np.int32)
    point_box = np.full(len(member), BACKGROUND, np.int32)
    single = count == 1
    if np.any(single):
        point_box[single] = np.argmax(member[single], axis=1)
    point_box[count >= 2] = AMBIGUOUS
    pairs_point, pairs_box = np.nonzero(member & (count >= 2)[:, None])  # row-major: sorted by point, then box
    return BoxPartition(point_box, count, pairs_point.astype(np.int32), pairs_box.astype(np.int32))


def partition_points(points: np.ndarray, box_min: np.ndarray, box_max: np.ndarray, chunk: int = 65536) -> BoxPartition:
    return partition_from_membership(box_membership(points, box_min, box_max, chunk))


def box_volume(box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray:
    return np.prod(np.asarray(box_max, np.float64) - np.asarray(box_min, np.float64), axis=1)


def containing_box(box_min: np.ndarray, box_max: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """(B,) int32: for each box, the smallest *other* box that fully contains it (-1: none).

    Nested boxes are BEEP3D's known failure case: every point of the inner box is ambiguous.
    Identical boxes contain each other; the lower index counts as the outer one.
    """
    box_min = np.asarray(box_min, np.float64)
    box_max = np.asarray(box_max, np.float64)
    inside = np.all(box_min[:, None] >= box_min[None] - tolerance, axis=2) & np.all(
        box_max[:, None] <= box_max[None] + tolerance, axis=2
    )  # inside[i, j]: box i lies within box j
    np.fill_diagonal(inside, False)
    identical = inside & inside.T
    inside &= ~(identical & (np.arange(len(box_min))[:, None] < np.arange(len(box_min))[None]))
    volume = box_volume(box_min, box_max)
    result = np.full(len(box_min), -1, np.int32)
    for i in np.flatnonzero(inside.any(axis=1)):
        outers = np.flatnonzero(inside[i])
        result[i] = outers[np.argmin(volume[outers])]
    return result


def smallest_containing_box(points: np.ndarray, boxes: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """For (point, box) containment pairs: (max point + 1,) the smallest box of each point
    (ties: lower index), -1 for points without pairs."""
    points, boxes = np.asarray(points, np.int64), np.asarray(boxes, np.int64)
    out = np.full(int(points.max(initial=-1)) + 1, -1, np.int64)
    order = np.lexsort((boxes, np.asarray(volume)[boxes], points))  # by point, then volume, then index
    first = np.r_[True, points[order][1:] != points[order][:-1]] if len(order) else np.zeros(0, bool)
    out[points[order][first]] = boxes[order][first]
    return out


def smallest_box_assignment(partition: BoxPartition, volume: np.ndarray) -> np.ndarray:
    """(N,) int32 box per point by Box2Mask's rule: P^l keep their box, P^u go to the smallest
    containing box (ties: lower index), background stays BACKGROUND."""
    result = np.where(partition.point_box >= 0, partition.point_box, BACKGROUND).astype(np.int32)
    smallest = smallest_containing_box(partition.ambiguous_point, partition.ambiguous_box, volume)
    ambiguous = np.flatnonzero(smallest >= 0)
    result[ambiguous] = smallest[ambiguous]
    return result


@dataclass
class BoxSummary:
    centre: np.ndarray  # (B, 3)
    volume: np.ndarray  # (B,)
    n_points: np.ndarray  # (B,) points inside the box
    n_labelled: np.ndarray  # (B,) points inside only this box
    contained_in: np.ndarray  # (B,) smallest box fully containing it, -1 none


def summarise_boxes(partition: BoxPartition, box_min: np.ndarray, box_max: np.ndarray, tolerance: float = 0.0) -> BoxSummary:
    n_boxes = len(box_min)
    labelled = partition.point_box[partition.labelled]
    return BoxSummary(
        centre=(0.5 * (np.asarray(box_min) + np.asarray(box_max))).astype(np.float32),
        volume=box_volume(box_min, box_max).astype(np.float32),
        n_points=(np.bincount(labelled, minlength=n_boxes) + np.bincount(partition.ambiguous_box, minlength=n_boxes)).astype(np.int32),
        n_labelled=np.bincount(labelled, minlength=n_boxes).astype(np.int32),
        contained_in=containing_box(box_min, box_max, tolerance),
    )
