"""Training data: one scene's arrays and its supervision, read from the stage artifacts.

- scene.h5 (ingest): vertices, colors, normals
- superpoints.h5: point_superpoint (without it, a coarse voxel grid stands in, with a warning)
- boxes.h5 (box_partition): the box partition (box mode)
- ncut.h5: masks (M, S) over superpoints; lifted.h5: point_instance (N,) and, for the
  curriculum's first stage, the per-view masks of the tracked objects (views/*) and each
  keyframe's own 2D masks (raw_views/*): mask_view, mask_offsets, mask_points (points of mask m:
  mask_points[mask_offsets[m]:mask_offsets[m+1]])
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.io.artifacts import read_artifact
from pipeline.learning.boxes import BACKGROUND, box_volume
from pipeline.errors import InputError
from pipeline.learning.train.beep3d import SceneBoxes, box_point_fractions
from pipeline.learning.train.selftrain import label_fractions

log = logging.getLogger(__name__)

FALLBACK_SUPERPOINT_CELL = 0.1  # metres: grid cells standing in for superpoints when none are given


@dataclass
class SceneInputs:
    name: str
    scene: Path
    superpoints: Path | None = None
    boxes: Path | None = None
    ncut: Path | None = None
    lifted: Path | None = None


@dataclass
class ViewMasks:
    point: np.ndarray  # (P,) point index
    view: np.ndarray  # (P,) view id
    instance: np.ndarray  # (P,) mask id (unique over the scene; -1: seen, in no mask); a point is
    # listed once per mask of its view, so overlapping masks (raw 2D masks) list it several times

    def view_ids(self) -> np.ndarray:
        """Views with at least one mask."""
        return np.unique(self.view[self.instance >= 0])


@dataclass
class TrainScene:
    name: str
    points: np.ndarray  # (N, 3) float32
    colors: np.ndarray  # (N, 3) uint8
    normals: np.ndarray  # (N, 3) float32
    point_superpoint: np.ndarray  # (N,) int64, 0..S-1
    sp_size: np.ndarray  # (S,) float64
    boxes: SceneBoxes | None = None
    box_fractions: np.ndarray | None = None  # (B, S) share of each superpoint inside each box
    sources: dict[str, np.ndarray] = field(default_factory=dict)  # "ncut" / "lifted": (K, S) in [0, 1]
    source_scores: dict[str, np.ndarray] = field(default_factory=dict)  # (K,) each source mask's own score
    views: ViewMasks | None = None  # lifted_views: the tracked objects' masks per view
    raw_views: ViewMasks | None = None  # raw_views: each keyframe's own 2D masks
    gt_instance: np.ndarray | None = None  # (N,) for evaluation only, never used in training
    gt_labels: np.ndarray | None = None

    @property
    def n_points(self) -> int:
        return len(self.points)

    def view_masks(self, source: str) -> ViewMasks | None:
        """The per-view masks of a view source (lifted_views | raw_views)."""
        return {"lifted_views": self.views, "raw_views": self.raw_views}[source]

    @property
    def n_superpoints(self) -> int:
        return len(self.sp_size)


def grid_superpoints(points: np.ndarray, cell: float = FALLBACK_SUPERPOINT_CELL) -> np.ndarray:
    cells = np.floor(np.asarray(points, np.float64) / cell).astype(np.int64)
    _, ids = np.unique(cells, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def _check_length(array: np.ndarray, n: int, path, name: str) -> None:
    if len(array) != n:
        raise InputError(path, f"{name} covers {len(array)} points but scene.h5 has {n}; rerun this stage")


def without_points(point_box: np.ndarray, ambiguous_point: np.ndarray, ambiguous_box: np.ndarray,
                   drop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The partition with the ``drop`` points (N,) bool moved to the background."""
    point_box = np.where(drop, BACKGROUND, point_box).astype(point_box.dtype)
    keep = ~drop[ambiguous_point]
    return point_box, ambiguous_point[keep], ambiguous_box[keep]


def load_boxes(path, n_points: int, point_superpoint: np.ndarray, sp_size: np.ndarray, label_index: dict[str, int] | None,
               drop_surface_background: bool = False):
    """SceneBoxes and (B, S) box fractions; ``drop_surface_background`` leaves box_partition's surface
    background out of the boxes (training targets without walls and floors)."""
    art = read_artifact(path, "boxes", required=["point_box", "ambiguous/point", "ambiguous/box", "box/min", "box/max"])
    _check_length(art["point_box"], n_points, path, "point_box")
    point_box = art["point_box"].astype(np.int32)
    ambiguous_point, ambiguous_box = art["ambiguous/point"].astype(np.int64), art["ambiguous/box"].astype(np.int64)
    surface = art["surface_background"].astype(bool) if "surface_background" in art else None
    if drop_surface_background:
        if surface is None:
            log.warning("%s has no surface_background (box_partition.surface_background: none, or an older "
                        "boxes.h5): the box targets keep every point inside the boxes", path)
        else:
            point_box, ambiguous_point, ambiguous_box = without_points(point_box, ambiguous_point, ambiguous_box, surface)
    box_min, box_max = art["box/min"].astype(np.float64), art["box/max"].astype(np.float64)
    labels = [str(x) for x in art.get("box/label", np.full(len(box_min), "object"))]
    class_index = np.asarray([label_index.get(label, 0) if label_index else 0 for label in labels], np.int64)
    boxes = SceneBoxes(
        point_box=point_box,
        ambiguous_point=ambiguous_point,
        ambiguous_box=ambiguous_box,
        centre=0.5 * (box_min + box_max),
        volume=box_volume(box_min, box_max),
        class_index=class_index,
        labels=labels,
        surface_background=surface,
    )
    fractions = box_point_fractions(boxes.point_box, boxes.ambiguous_point, boxes.ambiguous_box, point_superpoint,
                                    sp_size, boxes.n_boxes)
    return boxes, fractions


def box_labels(path) -> list[str]:
    art = read_artifact(path, "boxes", required=["box/min"])
    return [str(x) for x in art.get("box/label", np.full(len(art["box/min"]), "object"))]


def load_scene(inputs: SceneInputs, label_index: dict[str, int] | None = None, want_boxes: bool = True,
               drop_surface_background: bool = False) -> TrainScene:
    scene = read_artifact(inputs.scene, "scene", required=["vertices"])
    points = scene["vertices"].astype(np.float32)
    n = len(points)
    colors = scene.get("colors")
    colors = np.full((n, 3), 128, np.uint8) if colors is None else colors
    normals = scene.get("normals")
    normals = np.zeros((n, 3), np.float32) if normals is None else normals.astype(np.float32)
    if inputs.superpoints is not None:
        sp_art = read_artifact(inputs.superpoints, "superpoints", required=["point_superpoint"])
        point_superpoint = sp_art["point_superpoint"].astype(np.int64)
        _check_length(point_superpoint, n, inputs.superpoints, "point_superpoint")
    else:
        log.warning("%s: no superpoints given; using %.2f m grid cells instead (coarser masks)", inputs.name,
                    FALLBACK_SUPERPOINT_CELL)
        point_superpoint = grid_superpoints(points)
    n_superpoints = int(point_superpoint.max()) + 1 if n else 0
    sp_size = np.bincount(point_superpoint, minlength=n_superpoints).astype(np.float64)
    result = TrainScene(inputs.name, points, colors, normals, point_superpoint, sp_size,
                        gt_instance=scene.get("gt/instance"), gt_labels=scene.get("gt/instance_label"))
    if want_boxes and inputs.boxes is not None:
        result.boxes, result.box_fractions = load_boxes(inputs.boxes, n, point_superpoint, sp_size, label_index,
                                                        drop_surface_background)
    if inputs.ncut is not None:
        art = read_artifact(inputs.ncut, "ncut", required=["masks"])
        masks = np.asarray(art["masks"], bool).reshape(-1, art["masks"].shape[-1] if art["masks"].ndim == 2 else n_superpoints)
        if masks.shape[1] != n_superpoints:
            raise InputError(inputs.ncut, f"masks cover {masks.shape[1]} superpoints, {inputs.superpoints} has "
                                          f"{n_superpoints}; rerun ncut")
        result.sources["ncut"] = masks.astype(np.float32)
        result.source_scores["ncut"] = _mask_scores(art, len(masks))
    if inputs.lifted is not None:
        art = read_artifact(inputs.lifted, "lifted", required=["point_instance"])
        point_instance = art["point_instance"].astype(np.int64)
        _check_length(point_instance, n, inputs.lifted, "point_instance")
        result.sources["lifted"] = label_fractions(point_instance, point_superpoint, sp_size)
        result.source_scores["lifted"] = _mask_scores(art, len(result.sources["lifted"]))
        views = view_masks_from_lifted(art, n)
        if views is not None and len(views.point):
            result.views = views
        raw = view_masks_from_lifted(art, n, "raw_views")
        if raw is not None and len(raw.point):
            result.raw_views = raw
    return result


def _mask_scores(art, n_masks: int) -> np.ndarray:
    """The artifact's ``instance_score`` for its first ``n_masks`` instances (1 where it has none)."""
    scores = np.ones(n_masks, np.float32)
    if "instance_score" in art:
        given = np.asarray(art["instance_score"], np.float32).ravel()[:n_masks]
        scores[: len(given)] = given
    return scores


def view_masks_from_lifted(art, n_points: int, group: str = "views") -> ViewMasks | None:
    """Per-view masks of lifted.h5 (``group``: views = tracked objects, raw_views = each keyframe's
    own 2D masks; datasets mask_view, mask_offsets, mask_points) as triplets; None when the
    artifact has none. The mask id is the mask's index."""
    needed = (f"{group}/mask_view", f"{group}/mask_offsets", f"{group}/mask_points")
    if not all(name in art for name in needed):
        return None
    mask_view = art[f"{group}/mask_view"].astype(np.int64)
    offsets = art[f"{group}/mask_offsets"].astype(np.int64)
    points = art[f"{group}/mask_points"].astype(np.int64)
    if len(offsets) != len(mask_view) + 1 or (len(offsets) and offsets[-1] != len(points)):
        raise InputError(art.path, f"{group}/mask_offsets does not fit {group}/mask_view and {group}/mask_points")
    if len(points) and (points.min() < 0 or points.max() >= n_points):
        raise InputError(art.path, f"{group}/mask_points indexes points outside 0..{n_points - 1}")
    mask_of_entry = np.repeat(np.arange(len(mask_view)), np.diff(offsets))
    return ViewMasks(points, mask_view[mask_of_entry], mask_of_entry)


def label_vocabulary(inputs: list[SceneInputs]) -> list[str]:
    """Sorted box labels over all scenes (the class head's classes)."""
    labels = set()
    for item in inputs:
        if item.boxes is not None:
            labels.update(box_labels(item.boxes))
    return sorted(labels)


@dataclass
class Augmentation:
    rotation: np.ndarray  # (3, 3) rotation (and flip) about z
    scale: float
    centre: np.ndarray  # (3,) pivot
    color_shift: np.ndarray  # (3,) added to RGB (0..255 units)

    def points(self, xyz: np.ndarray) -> np.ndarray:
        return ((np.asarray(xyz, np.float64) - self.centre) @ self.rotation.T * self.scale + self.centre)

    def normals(self, normals: np.ndarray) -> np.ndarray:
        return np.asarray(normals, np.float64) @ self.rotation.T

    def colors(self, colors: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(colors, np.float64) + self.color_shift, 0, 255).astype(np.uint8)


def sample_augmentation(rng: np.random.Generator, centre: np.ndarray, config: dict) -> Augmentation:
    angle = rng.uniform(0, 2 * np.pi) if config.get("rotate") else 0.0
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    if config.get("flip") and rng.random() < 0.5:
        rotation = rotation @ np.diag([-1.0, 1.0, 1.0])
    low, high = config.get("scale") or [1.0, 1.0]
    scale = float(rng.uniform(low, high))
    jitter = float(config.get("color_jitter") or 0.0)
    shift = rng.normal(0, jitter * 255, 3) if jitter > 0 else np.zeros(3)
    return Augmentation(rotation, scale, np.asarray(centre, np.float64), shift)


def identity_augmentation(centre: np.ndarray) -> Augmentation:
    return Augmentation(np.eye(3), 1.0, np.asarray(centre, np.float64), np.zeros(3))


def crop(scene: TrainScene, point_index: np.ndarray) -> tuple[TrainScene, np.ndarray]:
    """The sub-scene of the given points with its superpoints renumbered; also returns the map
    from new superpoint ids to the scene's."""
    point_index = np.asarray(point_index, np.int64)
    kept_sp, new_sp = np.unique(scene.point_superpoint[point_index], return_inverse=True)
    new_sp = new_sp.reshape(-1).astype(np.int64)
    sp_size = np.bincount(new_sp, minlength=len(kept_sp)).astype(np.float64)
    sub = TrainScene(f"{scene.name}[crop]", scene.points[point_index], scene.colors[point_index],
                     scene.normals[point_index], new_sp, sp_size)
    return sub, kept_sp


def view_crop(scene: TrainScene, views: ViewMasks, view: int) -> tuple[TrainScene, np.ndarray]:
    """One view's training sample: the sub-scene of the points it lists (its masks' points, and
    points seen in no mask), and (K, S') targets, per mask the share of each cropped superpoint's
    points in it. Built per mask, not from a label map, because raw 2D masks may overlap; for
    disjoint masks it equals ``label_fractions``."""
    seen = views.view == view
    points, entry_point = np.unique(views.point[seen], return_inverse=True)
    sub, _ = crop(scene, points)
    in_mask = views.instance[seen] >= 0
    _, entry_mask = np.unique(views.instance[seen][in_mask], return_inverse=True)
    n_masks, n_sp = int(entry_mask.max()) + 1 if len(entry_mask) else 0, sub.n_superpoints
    keys = entry_mask.reshape(-1) * n_sp + sub.point_superpoint[entry_point.reshape(-1)[in_mask]]
    counts = np.bincount(keys, minlength=n_masks * n_sp).reshape(n_masks, n_sp)
    return sub, (counts / np.maximum(sub.sp_size, 1)[None]).astype(np.float32)


def scene_from_arrays(name: str, points, colors, normals, point_superpoint=None, box_min=None, box_max=None,
                      box_labels_=None, label_index: dict[str, int] | None = None, sources: dict | None = None) -> TrainScene:
    """A TrainScene from in-memory arrays (tests, benchmarks, notebooks): boxes are partitioned here."""
    from pipeline.learning.boxes import partition_points

    points = np.asarray(points, np.float32)
    point_superpoint = grid_superpoints(points) if point_superpoint is None else np.asarray(point_superpoint, np.int64)
    n_superpoints = int(point_superpoint.max()) + 1 if len(points) else 0
    sp_size = np.bincount(point_superpoint, minlength=n_superpoints).astype(np.float64)
    scene = TrainScene(name, points, np.asarray(colors, np.uint8), np.asarray(normals, np.float32), point_superpoint, sp_size)
    if box_min is not None:
        box_min = np.asarray(box_min, np.float64).reshape(-1, 3)
        box_max = np.asarray(box_max, np.float64).reshape(-1, 3)
        labels = list(box_labels_) if box_labels_ is not None else ["object"] * len(box_min)
        partition = partition_points(points, box_min, box_max)
        boxes = SceneBoxes(partition.point_box, partition.ambiguous_point.astype(np.int64),
                           partition.ambiguous_box.astype(np.int64), 0.5 * (box_min + box_max), box_volume(box_min, box_max),
                           np.asarray([(label_index or {}).get(label, 0) for label in labels], np.int64), labels)
        scene.boxes = boxes
        scene.box_fractions = box_point_fractions(boxes.point_box, boxes.ambiguous_point, boxes.ambiguous_box,
                                                  point_superpoint, sp_size, boxes.n_boxes)
    for key, value in (sources or {}).items():
        scene.sources[key] = np.asarray(value, np.float32)
    return scene


# -- streaming: scenes loaded on demand into a bounded cache ----------------------------------


@dataclass
class SceneSummary:
    """What planning a run needs of a scene, kept for every scene while its arrays stream: a few
    numbers and the ids of its views, never per-point arrays."""

    name: str
    n_points: int
    n_boxes: int
    views: dict[str, np.ndarray]  # view source (lifted_views | raw_views) -> ids of views with masks
    n_masks: dict[str, int]  # file source (ncut | lifted) -> masks it has
    nonempty: dict[str, bool]  # file source -> some mask holds a superpoint (> 0.5)

    def has_file_targets(self, targets) -> bool:
        """Whether ``file_targets`` of these targets is non-empty: the first source of each target
        (alternatives "a|b") with masks is chosen, and the merge keeps every non-empty mask first."""
        for target in targets:
            for name in target.split("|"):
                if name in self.n_masks and self.n_masks[name]:
                    if self.nonempty[name]:
                        return True
                    break
        return False


def summarize(scene: TrainScene) -> SceneSummary:
    views = {}
    for source in ("lifted_views", "raw_views"):
        masks = scene.view_masks(source)
        if masks is not None:
            views[source] = masks.view_ids()
    return SceneSummary(
        scene.name, scene.n_points, 0 if scene.boxes is None else scene.boxes.n_boxes, views,
        {name: len(masks) for name, masks in scene.sources.items()},
        {name: bool(len(masks) and (np.asarray(masks) > 0.5).any()) for name, masks in scene.sources.items()})


class SceneStore:
    """Scenes by index, loaded on demand and kept in an LRU cache of at most ``cache_size`` scenes.

    ``prefetch(indices)`` starts loading scenes a later step will use on a background thread (up
    to ``ahead`` at a time); a loaded-ahead scene waits beside the cache until it is asked for, so
    the cache bound always holds and in memory are at most ``cache_size + ahead`` scenes (plus the
    one a caller still holds). Which scene a step uses never depends on the cache, so a run gives
    the same result with any cache size. ``loads`` counts loads (tests). Built from a plain list
    (``in_memory``) it holds every scene and never loads.
    """

    def __init__(self, names: list[str], load, cache_size: int = 8, ahead: int = 1):
        if cache_size < 1:
            raise ValueError(f"train.scene_cache must be at least 1, got {cache_size}")
        self.names = list(names)
        self._load = load
        self.cache_size = int(cache_size)
        self.ahead = max(int(ahead), 0)
        self._cache: OrderedDict[int, TrainScene] = OrderedDict()
        self._pending: dict[int, Future] = {}
        self._summaries: dict[int, SceneSummary] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.loads = 0
        self._fixed: list[TrainScene] | None = None

    @classmethod
    def from_inputs(cls, inputs: list[SceneInputs], label_index: dict[str, int] | None = None, want_boxes: bool = True,
                    cache_size: int = 8, ahead: int = 1, drop_surface_background: bool = False) -> "SceneStore":
        return cls([item.name for item in inputs],
                   lambda i: load_scene(inputs[i], label_index, want_boxes, drop_surface_background), cache_size, ahead)

    @classmethod
    def in_memory(cls, scenes: list[TrainScene]) -> "SceneStore":
        store = cls([s.name for s in scenes], None, max(len(scenes), 1), 0)
        store._fixed = list(scenes)
        return store

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        """Every scene in order, loading ahead (at most the cache and the loads ahead in memory)."""
        for i in range(len(self)):
            self.prefetch(range(i + 1, min(i + 1 + self.ahead, len(self))))
            yield self[i]

    def _counted_load(self, index: int) -> TrainScene:
        scene = self._load(index)
        with self._lock:
            self.loads += 1
        return scene

    def __getitem__(self, index: int) -> TrainScene:
        index = int(index)
        if self._fixed is not None:
            return self._fixed[index]
        if not 0 <= index < len(self):
            raise IndexError(f"scene {index} of {len(self)}")
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            future = self._pending.pop(index, None)
        scene = future.result() if future is not None else self._counted_load(index)
        with self._lock:
            self._cache[index] = scene
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            self._summaries.setdefault(index, summarize(scene))
        return scene

    def prefetch(self, indices) -> None:
        """Start loading these scenes (in order, skipping cached ones) while fewer than ``ahead`` loads wait."""
        if self._fixed is not None or self.ahead == 0:
            return
        with self._lock:
            for index in indices:
                index = int(index)
                if len(self._pending) >= self.ahead:
                    break
                if index in self._cache or index in self._pending:
                    continue
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scene-loader")
                self._pending[index] = self._pool.submit(self._counted_load, index)

    def summary(self, index: int) -> SceneSummary:
        if index not in self._summaries:
            if self._fixed is not None:
                self._summaries[index] = summarize(self._fixed[index])
            else:
                self[index]
        return self._summaries[index]

    def summaries(self) -> list[SceneSummary]:
        """Every scene's summary; scenes not seen yet are loaded once, in order, loading ahead."""
        missing = [i for i in range(len(self)) if i not in self._summaries]
        for k, index in enumerate(missing):
            self.prefetch(missing[k + 1: k + 1 + self.ahead])
            self.summary(index)
        return [self._summaries[i] for i in range(len(self))]

    @property
    def cached(self) -> list[int]:
        """Indices in the cache, least recently used first."""
        return list(self._cache)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()


# -- per-step point budget --------------------------------------------------------------------


def budget_crop(scene: TrainScene, budget: int | None, rng: np.random.Generator, targets: np.ndarray | None = None,
                anchor: np.ndarray | None = None) -> tuple[TrainScene, np.ndarray | None]:
    """The scene cut to at most ``budget`` points around a random point (and its targets'
    columns); scenes within the budget come back unchanged.

    Whole superpoints are kept, nearest first by the horizontal distance of their centroid to the
    centre, so targets over superpoints stay exact (a superpoint's share inside a mask does not
    change) and the cut is a vertical column: indoor scans are z-up, and a column keeps furniture
    whole from floor to top. The centre is a random point of ``anchor`` (boolean per point: inside
    a box or a target mask) when any, so the crop always holds something to learn. Boxes without
    a point in the crop are dropped, as are target masks without a superpoint over 0.5 in it.
    Only when the nearest superpoint alone exceeds the budget are points cut individually.
    """
    if not budget or scene.n_points <= budget:
        return scene, targets
    candidates = np.flatnonzero(anchor) if anchor is not None and np.any(anchor) else np.arange(scene.n_points)
    centre = scene.points[candidates[rng.integers(len(candidates))], :2].astype(np.float64)
    size = np.maximum(scene.sp_size, 1)
    xy = np.stack([np.bincount(scene.point_superpoint, weights=scene.points[:, k], minlength=scene.n_superpoints)
                   for k in range(2)], 1) / size[:, None]
    order = np.argsort(np.hypot(*(xy - centre).T), kind="stable")
    n_keep = int(np.searchsorted(np.cumsum(scene.sp_size[order]), budget, side="right"))
    if n_keep > 0:
        keep_sp = np.zeros(scene.n_superpoints, bool)
        keep_sp[order[:n_keep]] = True
        point_index = np.flatnonzero(keep_sp[scene.point_superpoint])
    else:
        distance = np.hypot(*(scene.points[:, :2] - centre).T)
        point_index = np.sort(np.argpartition(distance, budget - 1)[:budget])
    sub, kept_sp = crop(scene, point_index)
    sub.name = scene.name
    if scene.boxes is not None:
        sub.boxes, sub.box_fractions = _crop_boxes(scene.boxes, point_index, scene.n_points, sub)
    for key, masks in scene.sources.items():
        sub.sources[key] = masks[:, kept_sp]
        sub.source_scores[key] = scene.source_scores.get(key, np.ones(len(masks), np.float32))
    if targets is not None:
        targets = targets[:, kept_sp]
        targets = targets[(targets > 0.5).any(1)]
    return sub, targets


def _crop_boxes(boxes: SceneBoxes, point_index: np.ndarray, n_points: int, sub: TrainScene):
    """The boxes with points among ``point_index``, renumbered, with their partition on the crop."""
    new_point = np.full(n_points, -1, np.int64)
    new_point[point_index] = np.arange(len(point_index))
    keep_pair = new_point[boxes.ambiguous_point] >= 0
    point_box = boxes.point_box[point_index]
    present = np.zeros(boxes.n_boxes, bool)
    present[point_box[point_box >= 0]] = True
    present[boxes.ambiguous_box[keep_pair]] = True
    kept = np.flatnonzero(present)
    new_box = np.full(boxes.n_boxes, -1, np.int64)
    new_box[kept] = np.arange(len(kept))
    point_box = np.where(point_box >= 0, new_box[np.maximum(point_box, 0)], point_box).astype(np.int32)
    cropped = SceneBoxes(point_box, new_point[boxes.ambiguous_point[keep_pair]], new_box[boxes.ambiguous_box[keep_pair]],
                         boxes.centre[kept], boxes.volume[kept], boxes.class_index[kept],
                         [boxes.labels[i] for i in kept] if boxes.labels else [])
    fractions = box_point_fractions(cropped.point_box, cropped.ambiguous_point, cropped.ambiguous_box,
                                    sub.point_superpoint, sub.sp_size, cropped.n_boxes)
    return cropped, fractions


def box_anchor(scene: TrainScene) -> np.ndarray | None:
    """Points inside at least one box (crop centres for box mode)."""
    if scene.boxes is None:
        return None
    return scene.boxes.point_box != BACKGROUND


def target_anchor(scene: TrainScene, targets: np.ndarray | None) -> np.ndarray | None:
    """Points whose superpoint is in some target mask (crop centres for unsupervised steps)."""
    if targets is None or not len(targets):
        return None
    return (np.asarray(targets) > 0.5).any(0)[scene.point_superpoint]
