"""TSDF fusion of posed RGB-D frames into a coloured triangle mesh (for scenes that have no mesh).

Open3D's ``UniformTSDFVolume`` does the integration and marching cubes (its scalable/VoxelBlockGrid
variants returned empty meshes on our build). A single uniform volume is a cube whose memory grows
with the cube of the scene's longest side, so the scene is tiled into cubic blocks of
``block_voxels`` voxels per side, created only where some depth point lies within the truncation
band. Neighbouring blocks share one layer of voxels, so every marching-cubes cell belongs to exactly
one block and seam vertices, computed in both, are welded afterwards.

Two passes over the frames: the first back-projects a pixel subsample of each depth image to find
the occupied blocks; the second integrates each frame into the blocks its view can reach (the box
spanned by the camera centre and its depth points, widened by the truncation distance).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from pipeline.params import FuseMeshParams
from pipeline.io.scannet import pose_is_valid

log = logging.getLogger(__name__)

class FrameSource(Protocol):
    """Posed RGB-D frames, read on demand (index 0..len-1)."""

    depth_intrinsic: np.ndarray  # (3, 3) or (4, 4) pinhole intrinsic of the depth images
    color_intrinsic: np.ndarray | None  # of the colour images; None: colour covers the depth view

    def __len__(self) -> int: ...

    def depth(self, index: int) -> np.ndarray:  # (H, W) float32 metres, 0 = no reading
        ...

    def pose(self, index: int) -> np.ndarray:  # (4, 4) camera-to-world; non-finite = invalid
        ...

    def color(self, index: int) -> np.ndarray | None:  # (h, w, 3) uint8, any size, or None
        ...


@dataclass
class ArrayFrames:
    """A ``FrameSource`` over in-memory arrays (tests, synthetic scenes)."""

    depths: Sequence[np.ndarray]
    poses: Sequence[np.ndarray]
    depth_intrinsic: np.ndarray
    colors: Sequence[np.ndarray] | None = None
    color_intrinsic: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.depths)

    def depth(self, index: int) -> np.ndarray:
        return np.asarray(self.depths[index], np.float32)

    def pose(self, index: int) -> np.ndarray:
        return np.asarray(self.poses[index], np.float64)

    def color(self, index: int) -> np.ndarray | None:
        return None if self.colors is None else np.asarray(self.colors[index], np.uint8)


@dataclass
class FusedMesh:
    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int32
    colors: np.ndarray | None  # (V, 3) uint8
    stats: dict = field(default_factory=dict)


def backproject(
    depth: np.ndarray, intrinsic: np.ndarray, pose: np.ndarray, stride: int = 1, max_depth: float = np.inf
) -> np.ndarray:
    """(P, 3) world points of the valid depth pixels (every ``stride``-th row and column)."""
    sampled = np.asarray(depth)[::stride, ::stride]
    rows, cols = np.nonzero((sampled > 0) & (sampled <= max_depth) & np.isfinite(sampled))
    z = sampled[rows, cols].astype(np.float64)
    u, v = cols * stride, rows * stride
    fx, fy, cx, cy = intrinsic[0, 0], intrinsic[1, 1], intrinsic[0, 2], intrinsic[1, 2]
    camera = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)
    return camera @ pose[:3, :3].T + pose[:3, 3]


_KEY_BIAS = 1 << 20  # block indices are packed into one int64: 21 bits per axis, biased to be >= 0


@dataclass
class _BlockGrid:
    """Cubic blocks anchored at the world origin; neighbours share one voxel layer."""

    voxel: float
    block_voxels: int

    @property
    def step(self) -> float:  # world distance between the origins of neighbouring blocks
        return (self.block_voxels - 1) * self.voxel

    def block_origin(self, key: tuple[int, int, int]) -> np.ndarray:
        return np.asarray(key, np.float64) * self.step

    def keys_near(self, points: np.ndarray, reach: float) -> np.ndarray:
        """Packed keys (sorted, unique) of the blocks that meet some box ``point +- reach``."""
        if len(points) == 0:
            return np.zeros(0, np.int64)
        low = np.floor((points - reach) / self.step).astype(np.int64)
        high = np.floor((points + reach) / self.step).astype(np.int64)
        span = int(np.max(high - low)) + 1  # blocks a box can cross along one axis
        packed = []
        for offset in np.ndindex(span, span, span):
            key = low + np.asarray(offset)
            inside = np.all(key <= high, axis=1)
            packed.append(self.pack(key[inside]))
        return np.unique(np.concatenate(packed))

    @staticmethod
    def pack(index: np.ndarray) -> np.ndarray:
        biased = index + _KEY_BIAS
        return (biased[:, 0] << 42) | (biased[:, 1] << 21) | biased[:, 2]

    @staticmethod
    def unpack(keys: np.ndarray) -> np.ndarray:
        mask = (1 << 21) - 1
        return np.stack([(keys >> 42) & mask, (keys >> 21) & mask, keys & mask], axis=1) - _KEY_BIAS


def _frame_ids(n_frames: int, every: int) -> range:
    if every < 1:
        raise ValueError(f"'every' must be a positive integer, got {every}")
    return range(0, n_frames, every)


def _intrinsic3(intrinsic: np.ndarray) -> np.ndarray:
    intrinsic = np.asarray(intrinsic, np.float64)
    return intrinsic[:3, :3]


def fuse_tsdf(frames: FrameSource, params: FuseMeshParams | dict | None = None) -> FusedMesh:
    """Fuse every ``every``-th frame with a valid pose into a mesh; see ``FuseMeshParams``."""
    import open3d as o3d

    p = FuseMeshParams.from_dict(params)
    voxel, trunc, max_depth = p.voxel, p.trunc, p.max_depth
    block_voxels = p.block_voxels
    if voxel <= 0 or trunc <= 0 or max_depth <= 0:
        raise ValueError("voxel, trunc and max_depth must be positive")
    if block_voxels < 2:
        raise ValueError(f"block_voxels must be at least 2, got {block_voxels}")
    reach = trunc + 2 * voxel  # the band a reading can write to, plus the gap between sampled pixels
    intrinsic = _intrinsic3(frames.depth_intrinsic)

    # Pass 1: which blocks hold surface? (subsampled depth, valid poses only)
    grid = _BlockGrid(voxel, block_voxels)
    selected = list(_frame_ids(len(frames), p.every))
    valid, invalid, found = [], 0, []
    for index in selected:
        pose = frames.pose(index)
        if pose.shape != (4, 4) or not pose_is_valid(pose):
            invalid += 1
            continue
        valid.append(index)
        points = backproject(frames.depth(index), intrinsic, pose, p.plan_stride, max_depth)
        found.append(grid.keys_near(points, reach))
    stats = {"frames_selected": len(selected), "frames_invalid_pose": invalid, "frames_used": len(valid)}
    packed_keys = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    if len(packed_keys) == 0:
        log.warning("no valid depth in %d frames (%d with invalid poses): empty mesh", len(selected), invalid)
        return FusedMesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32), None, {**stats, "blocks": 0})
    block_keys = [tuple(int(c) for c in key) for key in grid.unpack(packed_keys)]
    total_voxels = len(block_keys) * block_voxels**3
    if total_voxels > p.max_voxels:
        raise ValueError(
            f"TSDF volume would need {total_voxels:,} voxels ({len(block_keys)} blocks of {block_voxels}^3) "
            f"> max_voxels {int(p.max_voxels):,}; use a larger voxel size"
        )
    color_type = o3d.pipelines.integration.TSDFVolumeColorType
    has_color = frames.color(valid[0]) is not None
    volumes = {
        key: o3d.pipelines.integration.UniformTSDFVolume(
            length=block_voxels * voxel,
            resolution=block_voxels,
            sdf_trunc=trunc,
            color_type=color_type.RGB8 if has_color else color_type.NoColor,
            origin=grid.block_origin(key).reshape(3, 1),
        )
        for key in block_keys
    }
    block_min = np.array([grid.block_origin(k) for k in block_keys])
    block_max = block_min + block_voxels * voxel

    # Pass 2: integrate each frame into the blocks its rays can reach.
    integrations = 0
    for done, index in enumerate(valid, start=1):
        if done % 25 == 0 or done == len(valid):
            log.info("fused %d/%d frames", done, len(valid))
        depth = np.ascontiguousarray(frames.depth(index), np.float32)
        depth = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
        pose = frames.pose(index)
        seen = backproject(depth, intrinsic, pose, p.plan_stride, max_depth)
        if len(seen) == 0:
            continue
        # Integration writes free space in front of the surface too: keep every block in the box
        # spanned by the camera centre and the frame's points (a cheap, conservative frustum cull).
        reach_box = np.vstack([seen, pose[:3, 3][None]])
        lo, hi = reach_box.min(axis=0) - reach, reach_box.max(axis=0) + reach
        touched = np.flatnonzero(np.all((block_max >= lo) & (block_min <= hi), axis=1))
        height, width = depth.shape
        color = frames.color(index) if has_color else None
        if color is None:
            color = np.zeros((height, width, 3), np.uint8)
        else:
            color = color_at_depth_pixels(color, frames.color_intrinsic, intrinsic, width, height)
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(color)),
            o3d.geometry.Image(depth),
            depth_scale=1.0,
            depth_trunc=max_depth,
            convert_rgb_to_intensity=False,
        )
        camera = o3d.camera.PinholeCameraIntrinsic(
            width, height, intrinsic[0, 0], intrinsic[1, 1], intrinsic[0, 2], intrinsic[1, 2]
        )
        extrinsic = np.linalg.inv(pose)
        for block in touched:
            volumes[block_keys[block]].integrate(rgbd, camera, extrinsic)
        integrations += len(touched)

    pieces = [volumes[key].extract_triangle_mesh() for key in block_keys]
    vertices, faces, colors = _weld(
        [np.asarray(m.vertices) for m in pieces],
        [np.asarray(m.triangles) for m in pieces],
        [np.asarray(m.vertex_colors) for m in pieces] if has_color else None,
        voxel,
    )
    stats.update(blocks=len(block_keys), voxels=total_voxels, block_integrations=integrations,
                 vertices=len(vertices), faces=len(faces))
    return FusedMesh(vertices, faces, colors, stats)


def color_at_depth_pixels(
    color: np.ndarray, color_intrinsic: np.ndarray | None, depth_intrinsic: np.ndarray, width: int, height: int
) -> np.ndarray:
    """(height, width, 3) colour seen along each depth pixel's ray (ScanNet: 1296x968 vs 640x480).

    Colour and depth cameras are taken to share a centre and orientation (ScanNet's exports), so a
    depth pixel's ray hits colour pixel ``K_color K_depth^-1 (u, v, 1)`` whatever its depth; the
    nearest colour pixel is used. Without a colour intrinsic the image is simply resized.
    """
    color = np.asarray(color, np.uint8)
    if color_intrinsic is None:
        if color.shape[:2] == (height, width):
            return color
        from PIL import Image

        return np.asarray(Image.fromarray(color).resize((width, height), Image.BILINEAR))
    kc, kd = np.asarray(color_intrinsic, np.float64)[:3, :3], np.asarray(depth_intrinsic, np.float64)[:3, :3]
    u = (np.arange(width) - kd[0, 2]) / kd[0, 0] * kc[0, 0] + kc[0, 2]
    v = (np.arange(height) - kd[1, 2]) / kd[1, 1] * kc[1, 1] + kc[1, 2]
    columns = np.clip(np.rint(u), 0, color.shape[1] - 1).astype(np.int64)
    rows = np.clip(np.rint(v), 0, color.shape[0] - 1).astype(np.int64)
    return np.ascontiguousarray(color[rows[:, None], columns[None, :]])


def _weld(
    vertex_pieces: list[np.ndarray],
    face_pieces: list[np.ndarray],
    color_pieces: list[np.ndarray] | None,
    voxel: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Concatenate block meshes, merge the seam vertices both neighbours produced, drop degenerate faces."""
    offsets = np.cumsum([0] + [len(v) for v in vertex_pieces])
    vertices = np.concatenate(vertex_pieces) if vertex_pieces else np.zeros((0, 3))
    if len(vertices) == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32), None
    faces = np.concatenate([f + offsets[i] for i, f in enumerate(face_pieces)]).astype(np.int64)
    # Seam copies differ only by rounding of their block origins: snap to 1e-4 voxel to match them.
    keys = np.round(vertices / (voxel * 1e-4)).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first, kind="stable")  # keep the vertices in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    remap = rank[inverse]
    faces = remap[faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    welded = vertices[first[order]].astype(np.float32)
    colors = None
    if color_pieces is not None:
        all_colors = np.concatenate(color_pieces)
        colors = np.clip(np.rint(all_colors[first[order]] * 255.0), 0, 255).astype(np.uint8)
    return welded, faces[keep].astype(np.int32), colors


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean nearest-neighbour distance from a to b and from b to a (metres)."""
    from scipy.spatial import cKDTree

    a_to_b = cKDTree(np.asarray(b, np.float64)).query(np.asarray(a, np.float64))[0]
    b_to_a = cKDTree(np.asarray(a, np.float64)).query(np.asarray(b, np.float64))[0]
    return float(a_to_b.mean()), float(b_to_a.mean())
