"""RGB-D and instance rendering of a room by ray casting (open3d's RaycastingScene).

One ray per pixel centre. Depth is the z-depth along the optical axis in millimetres (uint16,
0 where nothing is hit or beyond ``max_depth``), colour is the barycentric interpolation of the
vertex colours times a Lambert term (an overhead light plus a head light) over an ambient floor,
and the instance map holds the objectId of the hit triangle (-1 where depth is 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from pipeline.synth.camera import pixel_rays

_MISS = np.iinfo(np.uint32).max
_OVERHEAD_LIGHT = (np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])).astype(np.float32)


class Frame(NamedTuple):
    color: np.ndarray  # (h, w, 3) uint8, at the colour camera's size
    depth_mm: np.ndarray  # (h, w) uint16 millimetres, 0 = no reading
    instance: np.ndarray  # (h, w) int32 objectId per depth pixel, -1 = nothing


class RoomRenderer:
    """Holds the ray-casting acceleration structure of one room, built once for all frames."""

    def __init__(self, room, nthreads: int = 0):
        import open3d as o3d  # heavy import, only needed when rendering

        self._o3d = o3d
        self._scene = o3d.t.geometry.RaycastingScene(nthreads=nthreads)
        self._scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(room.vertices, np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(room.faces, np.uint32)),
        )
        self._faces = np.asarray(room.faces, np.int64)
        self._colors = np.asarray(room.colors, np.float32) / 255.0
        self._face_instance = room.face_instance.astype(np.int32)

    def _cast(self, pose: np.ndarray, intrinsic: np.ndarray, size: tuple[int, int]):
        rays = pixel_rays(pose, intrinsic, size)
        hits = self._scene.cast_rays(self._o3d.core.Tensor(rays))
        return rays, {name: hits[name].numpy() for name in ("t_hit", "primitive_ids", "primitive_uvs", "primitive_normals")}

    def depth_and_instance(self, pose, intrinsic, size, max_depth: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
        _, hits = self._cast(pose, intrinsic, size)
        return self._depth_instance(hits, max_depth)

    def _depth_instance(self, hits, max_depth: float) -> tuple[np.ndarray, np.ndarray]:
        depth = hits["t_hit"]
        valid = (hits["primitive_ids"] != _MISS) & np.isfinite(depth) & (depth <= max_depth)
        depth_mm = np.where(valid, np.rint(np.where(valid, depth, 0.0) * 1000.0), 0).astype(np.uint16)
        valid &= depth_mm > 0
        instance = np.full(depth.shape, -1, np.int32)
        instance[valid] = self._face_instance[hits["primitive_ids"][valid]]
        return depth_mm, instance

    def color(self, pose, intrinsic, size) -> np.ndarray:
        return self._shade(*self._cast(pose, intrinsic, size))

    def _shade(self, rays, hits) -> np.ndarray:
        shape = hits["t_hit"].shape
        image = np.zeros((np.prod(shape), 3), np.float32)
        hit = np.flatnonzero(hits["primitive_ids"].reshape(-1) != _MISS)
        if hit.size:
            faces = self._faces[hits["primitive_ids"].reshape(-1)[hit]]
            uv = hits["primitive_uvs"].reshape(-1, 2)[hit]
            corners = self._colors[faces]  # (n, 3 corners, rgb)
            albedo = corners[:, 0] + uv[:, :1] * (corners[:, 1] - corners[:, 0]) + uv[:, 1:] * (corners[:, 2] - corners[:, 0])
            normals = hits["primitive_normals"].reshape(-1, 3)[hit]
            view = rays[..., 3:].reshape(-1, 3)[hit]
            # abs(): light both sides, so shading does not depend on how a face is wound
            overhead = np.abs(normals @ _OVERHEAD_LIGHT)
            headlight = np.abs((normals * view).sum(axis=1)) / np.linalg.norm(view, axis=1)
            shade = np.minimum(0.35 + 0.4 * overhead + 0.35 * headlight, 1.05)
            image[hit] = albedo * shade[:, None]
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8).reshape(shape + (3,))

    def render(self, pose, intrinsic, size, *, color_intrinsic=None, color_size=None, max_depth: float = 10.0) -> Frame:
        """Render one frame; colour may use its own intrinsic and size (depth and instance share theirs)."""
        pose = np.asarray(pose, np.float64)
        if not np.all(np.isfinite(pose)):
            raise ValueError("cannot render a frame with a non-finite pose")
        rays, hits = self._cast(pose, intrinsic, size)
        depth_mm, instance = self._depth_instance(hits, max_depth)
        same_camera = (color_intrinsic is None or np.array_equal(color_intrinsic, intrinsic)) and (
            color_size is None or tuple(color_size) == tuple(size))
        if same_camera:
            color = self._shade(rays, hits)  # one cast serves both images
        else:
            color = self.color(pose, intrinsic if color_intrinsic is None else color_intrinsic,
                               size if color_size is None else color_size)
        return Frame(color, depth_mm, instance)


def render_frames(room, poses: Iterable[np.ndarray], intrinsic: np.ndarray, size: tuple[int, int] = (320, 240), *,
                  color_intrinsic=None, color_size=None, max_depth: float = 10.0, nthreads: int = 0) -> Iterator[Frame]:
    """Frames (color, depth_mm, instance) for each camera-to-world pose; ``size`` is (width, height)."""
    renderer = RoomRenderer(room, nthreads=nthreads)
    for pose in poses:
        yield renderer.render(pose, intrinsic, size, color_intrinsic=color_intrinsic, color_size=color_size,
                              max_depth=max_depth)
