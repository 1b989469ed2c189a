"""Weight-free tracker: carry object masks between frames through depth and camera poses.

For each pixel of the new frame with a depth reading, its 3D point is projected into the previous
tracked frame. If the previous frame saw that same surface there (its depth agrees within
``max(depth_tolerance, relative_tolerance * depth)``: the occlusion test), the pixel takes the
previous frame's label. This is a backward warp, so masks come out dense, without the holes a
forward splat leaves, and a surface hidden in the previous frame never inherits the label of
what hid it.

Pixels the previous frame did not see (newly uncovered, or back in view after leaving it) are
looked up in a voxel memory of the latest label observed at each surface voxel, which is how a
Dormant object that comes back into view is found again with its old id. Terminated objects are
erased from the memory. Pixels found nowhere (a surface never observed, or no depth reading) are
*unknown* (-1): keyframe matching then judges overlap on the known pixels only.
"""

from __future__ import annotations

import numpy as np

from pipeline.tracking.base import StepFrames, Tracker
from pipeline.tracking.frames import backproject, depth_agrees, project
from pipeline.params import REPROJECTION

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(REPROJECTION)  # track.reprojection

_OFFSET = 1 << 20  # voxel coordinates are stored in 21 bits each, centred here


def voxel_keys(xyz: np.ndarray, voxel_size: float) -> np.ndarray:
    """One int64 key per point of (3, N) ``xyz``: its voxel's (x, y, z) indices in 21 bits each."""
    q = np.clip(np.floor(xyz / voxel_size).astype(np.int64) + _OFFSET, 0, (1 << 21) - 1)
    return (q[0] << 42) | (q[1] << 21) | q[2]


def majority_per_key(keys: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique keys (sorted) and, for each, the label observed most often (ties: the smaller label)."""
    if len(keys) == 0:
        return keys, labels
    order = np.lexsort((labels, keys))
    k, lab = keys[order], labels[order]
    start = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (lab[1:] != lab[:-1])])
    counts = np.diff(np.r_[start, len(k)])
    pair_key, pair_label = k[start], lab[start]
    best = np.lexsort((pair_label, -counts, pair_key))
    first = np.r_[True, pair_key[best][1:] != pair_key[best][:-1]]
    return pair_key[best][first], pair_label[best][first]


class VoxelLabelMemory:
    """The latest label seen at each surface voxel (sorted keys, labels; 0 = seen unlabelled)."""

    def __init__(self, voxel_size: float):
        self.voxel_size = float(voxel_size)
        self.keys = np.zeros(0, np.int64)
        self.labels = np.zeros(0, np.int32)

    def _lookup_keys(self, keys: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.full(len(keys), -1, np.int32)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, self.labels[at], -1).astype(np.int32)

    def lookup(self, xyz: np.ndarray, search: int = 0) -> np.ndarray:
        """The label stored at each point's voxel; -1 where the voxel was never observed.

        With ``search`` = 1, a point whose own voxel was never observed takes the label of its
        face-neighbour voxels instead (an object label if any neighbour has one, the smallest),
        so a surface that comes into view right beside an observed part of an object joins it.
        """
        keys = voxel_keys(xyz, self.voxel_size)
        labels = self._lookup_keys(keys)
        if search and len(self.keys):
            missing = np.flatnonzero(labels < 0)
            best = np.full(len(missing), -1, np.int32)
            for shift in (1 << 42, 1 << 21, 1):
                for sign in (1, -1):
                    found = self._lookup_keys(keys[missing] + sign * shift)
                    objects = found > 0
                    best = np.where(objects & ((best <= 0) | (found < best)), found, best)
                    best = np.where((best < 0) & (found == 0), 0, best)
            labels[missing] = best
        return labels

    def write(self, xyz: np.ndarray, labels: np.ndarray) -> None:
        """Store the labels of points (3, N); several points in one voxel: their majority."""
        keys, labels = majority_per_key(voxel_keys(xyz, self.voxel_size), labels.astype(np.int32))
        if len(self.keys):
            at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
            known = self.keys[at] == keys
            self.labels[at[known]] = labels[known]
            keys, labels = keys[~known], labels[~known]
        if len(keys):
            all_keys = np.concatenate([self.keys, keys])
            order = np.argsort(all_keys, kind="stable")
            self.keys = all_keys[order]
            self.labels = np.concatenate([self.labels, labels])[order]

    def forget(self, object_ids) -> None:
        self.labels[np.isin(self.labels, list(object_ids))] = 0


class ReprojectionTracker(Tracker):
    name = "reprojection"

    def __init__(self, frames: StepFrames, params: dict | None = None, device: str = "cpu"):
        self.frames = frames
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.memory = VoxelLabelMemory(self.params["voxel_size"])
        self.prev_labels: np.ndarray | None = None
        self.prev_depth: np.ndarray | None = None
        self.prev_pose: np.ndarray | None = None
        self._current: tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _tolerances(self) -> tuple[float, float]:
        return float(self.params["depth_tolerance"]), float(self.params["relative_tolerance"])

    def warp_previous(self, xyz: np.ndarray) -> np.ndarray:
        """Labels from the previous frame for world points (3, N); -1 where it did not see them
        (or knew nothing there)."""
        camera = self.frames.camera
        u, v, z = project(xyz, camera, self.prev_pose)
        inside = (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
        index = np.flatnonzero(inside)
        pixel = v[index] * camera.width + u[index]
        agrees = depth_agrees(z[index], self.prev_depth.reshape(-1)[pixel], *self._tolerances())
        labels = np.full(xyz.shape[1], -1, np.int32)
        labels[index[agrees]] = self.prev_labels.reshape(-1)[pixel[agrees]]
        return labels

    def predict(self, step: int) -> np.ndarray:
        camera = self.frames.camera
        depth, pose = self.frames.depth(step), self.frames.pose(step)
        points, valid = backproject(depth, camera, pose)
        valid_index = np.flatnonzero(valid)
        labels = np.full(camera.width * camera.height, -1, np.int32)
        if self.prev_labels is not None:
            labels[valid_index] = self.warp_previous(points[:, valid_index])
        if self.params["memory"]:
            rest = valid_index[labels[valid_index] < 0]
            labels[rest] = self.memory.lookup(points[:, rest], int(self.params["memory_search"]))
        self._current = (step, depth, pose, points, valid)
        return labels.reshape(camera.height, camera.width)

    def observe(self, step: int, labels: np.ndarray, prompted) -> None:
        if self._current is None or self._current[0] != step:
            self.predict(step)
        _, depth, pose, points, valid = self._current
        self.prev_labels = np.asarray(labels, np.int32).copy()
        self.prev_depth, self.prev_pose = depth, pose
        if self.params["memory"]:
            camera = self.frames.camera
            stride = int(self.params["memory_pixel_stride"]) or self.auto_stride(depth)
            grid = np.zeros(camera.shape, bool)
            grid[::stride, ::stride] = True
            known = np.flatnonzero(valid & grid.reshape(-1) & (self.prev_labels.reshape(-1) >= 0))
            self.memory.write(points[:, known], self.prev_labels.reshape(-1)[known])
        self._current = None

    def auto_stride(self, depth: np.ndarray) -> int:
        """Largest pixel step whose footprint on far surfaces (90th depth percentile) still fits in
        one voxel, so a subsample of pixels reaches every voxel the frame sees."""
        valid = depth[depth > 0]
        if valid.size == 0:
            return 1
        far = float(np.percentile(valid, 90))
        focal = float(self.frames.camera.intrinsic[0, 0])
        return int(np.clip(self.params["voxel_size"] * focal / max(far, 1e-6), 1, 4))

    def drop(self, object_ids) -> None:
        ids = list(object_ids)
        self.memory.forget(ids)
        if self.prev_labels is not None:
            self.prev_labels[np.isin(self.prev_labels, ids)] = 0

    def snapshot(self) -> dict[str, np.ndarray]:
        state = {"memory_keys": self.memory.keys, "memory_labels": self.memory.labels}
        if self.prev_labels is not None:
            state.update(prev_labels=self.prev_labels, prev_depth=self.prev_depth, prev_pose=self.prev_pose)
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.memory.keys = np.asarray(state["memory_keys"], np.int64)
        self.memory.labels = np.asarray(state["memory_labels"], np.int32)
        if "prev_labels" in state:
            self.prev_labels = np.asarray(state["prev_labels"], np.int32)
            self.prev_depth = np.asarray(state["prev_depth"], np.float32)
            self.prev_pose = np.asarray(state["prev_pose"], np.float64)
