"""RGB-D frames of one scene at the *working resolution*, and pinhole projection helpers.

2D masks, tracked label maps and lifting all live in one image space: the depth camera (its
intrinsic and size, optionally scaled by ``image_scale``). Colour is resampled into that camera
through the two intrinsics (ScanNet exports colour and depth registered, from the same centre),
so every mask pixel has a depth reading and a ray.

Poses are camera-to-world (OpenCV convention: x right, y down, z forward); a camera point
(x, y, z) lands on pixel u = fx x / z + cx, v = fy y / z + cy with pixel centres at integers.
(pipeline/unscene3d/backproject.py does the same projection in torch for feature maps; these numpy helpers
serve integer label maps at the working resolution and keep the weight-free path free of torch.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from pipeline.io import scannet
from pipeline.errors import InputError
from pipeline.scene.geometry import scale_intrinsics


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at the working resolution."""

    intrinsic: np.ndarray  # (3, 3)
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @cached_property
    def unit_rays(self) -> np.ndarray:
        """(3, H*W) camera-frame directions with z = 1, one per pixel centre (row-major)."""
        k = self.intrinsic
        v, u = np.mgrid[0 : self.height, 0 : self.width]
        x = (u.ravel() - k[0, 2]) / k[0, 0]
        y = (v.ravel() - k[1, 2]) / k[1, 1]
        return np.ascontiguousarray(np.stack([x, y, np.ones_like(x)]), dtype=np.float32)


def working_camera(depth_intrinsic: np.ndarray, depth_size, image_scale: float = 1.0) -> Camera:
    """The depth camera, scaled by ``image_scale`` (1 = depth resolution)."""
    if not 0 < image_scale <= 1:
        raise ValueError(f"image_scale must be in (0, 1], got {image_scale}")
    width, height = (int(s) for s in depth_size)
    size = (max(1, round(width * image_scale)), max(1, round(height * image_scale)))
    intrinsic = scale_intrinsics(np.asarray(depth_intrinsic, np.float64), (width, height), size)
    return Camera(intrinsic[:3, :3].copy(), size[0], size[1])


# Point sets are (3, N) float32 arrays (one row per coordinate): rigid transforms row by row are
# several times faster than (N, 3) matrix products, and these run on every pixel of every frame.


def as_columns(points: np.ndarray) -> np.ndarray:
    """(N, 3) points -> (3, N) contiguous float32."""
    return np.ascontiguousarray(np.asarray(points, np.float32).T)


def transform(xyz: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to (3, N) points."""
    m = np.asarray(matrix, np.float32)
    out = np.empty_like(xyz)
    for row in range(3):
        out[row] = m[row, 0] * xyz[0] + m[row, 1] * xyz[1] + m[row, 2] * xyz[2] + m[row, 3]
    return out


def camera_points(depth: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points (3, H*W) of every pixel and whether its depth is valid (H*W,)."""
    z = depth.reshape(-1).astype(np.float32)
    return camera.unit_rays * z[None, :], z > 0


def backproject(depth: np.ndarray, camera: Camera, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (3, H*W) f32 of every pixel and the valid-depth mask (H*W,)."""
    points, valid = camera_points(depth, camera)
    return transform(points, pose), valid


def project(xyz: np.ndarray, camera: Camera, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest pixel column, row (int64, -1 behind the camera, may be outside the image) and
    z-depth of world points (3, N) seen from a camera-to-world pose."""
    local = transform(xyz, np.linalg.inv(pose))
    z = local[2]
    k = camera.intrinsic
    ok = z > 1e-6
    safe_z = np.where(ok, z, 1.0)
    u = np.where(ok, np.rint(k[0, 0] * local[0] / safe_z + k[0, 2]), -1).astype(np.int64)
    v = np.where(ok, np.rint(k[1, 1] * local[1] / safe_z + k[1, 2]), -1).astype(np.int64)
    return u, v, z


def depth_agrees(z: np.ndarray, measured: np.ndarray, abs_tol: float, rel_tol: float) -> np.ndarray:
    """The occlusion test: a projected depth agrees with the measured one (which must be valid)."""
    return (measured > 0) & (np.abs(z - measured) <= np.maximum(abs_tol, rel_tol * measured))


def visible_points(xyz: np.ndarray, depth: np.ndarray, camera: Camera, pose: np.ndarray,
                   abs_tol: float, rel_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the world points (3, N) seen in a frame (in view, not occluded) and their flat pixel."""
    u, v, z = project(xyz, camera, pose)
    inside = (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    index = np.flatnonzero(inside)
    pixel = v[index] * camera.width + u[index]
    seen = depth_agrees(z[index], depth.reshape(-1)[pixel], abs_tol, rel_tol)
    return index[seen], pixel[seen]


def _nearest_rows_cols(src_size, dst_size) -> tuple[np.ndarray, np.ndarray]:
    """Source row/column of each destination pixel centre for a nearest-neighbour resize."""
    (sw, sh), (dw, dh) = src_size, dst_size
    cols = np.minimum(((np.arange(dw) + 0.5) * sw / dw).astype(np.int64), sw - 1)
    rows = np.minimum(((np.arange(dh) + 0.5) * sh / dh).astype(np.int64), sh - 1)
    return rows, cols


def resize_nearest(image: np.ndarray, size) -> np.ndarray:
    """Nearest-neighbour resize to ``size`` (w, h); labels and depth keep their exact values."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    rows, cols = _nearest_rows_cols((image.shape[1], image.shape[0]), size)
    return image[rows[:, None], cols[None, :]]


class ColourSampler:
    """Resamples colour images into the working camera (bilinear), through both intrinsics."""

    def __init__(self, color_intrinsic: np.ndarray, color_size, camera: Camera):
        k_c = np.asarray(color_intrinsic, np.float64)[:3, :3]
        rays = camera.unit_rays.astype(np.float64)
        self.x = k_c[0, 0] * rays[0] + k_c[0, 2]
        self.y = k_c[1, 1] * rays[1] + k_c[1, 2]
        self.color_size = tuple(int(s) for s in color_size)
        self.camera = camera
        grid_v, grid_u = np.mgrid[0 : camera.height, 0 : camera.width]
        self.identity = self.color_size == (camera.width, camera.height) and np.allclose(
            self.x, grid_u.ravel(), atol=1e-3) and np.allclose(self.y, grid_v.ravel(), atol=1e-3)

    def __call__(self, color: np.ndarray) -> np.ndarray:
        if self.identity:
            return color
        h, w = color.shape[:2]
        x = np.clip(self.x, 0, w - 1)
        y = np.clip(self.y, 0, h - 1)
        x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
        y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        c = color.astype(np.float32)
        top = c[y0, x0] * (1 - fx) + c[y0, x1] * fx
        bottom = c[y1, x0] * (1 - fx) + c[y1, x1] * fx
        out = top * (1 - fy) + bottom * fy
        return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(self.camera.height, self.camera.width, 3)


class SceneFrames:
    """The frames of one scene, read lazily at the working resolution.

    ``index`` arguments are positions in scene.h5's ``frames/*`` arrays, not ScanNet frame ids.
    """

    def __init__(self, scene_dir, frame_ids, poses, valid, color_intrinsic, depth_intrinsic, color_size,
                 depth_size, image_scale: float = 1.0, depth_scale: float = 1000.0):
        self.scene_dir = Path(scene_dir)
        self.frame_ids = np.asarray(frame_ids, np.int64)
        self.poses = np.asarray(poses, np.float64)
        self.valid = np.asarray(valid, bool)
        self.depth_size = tuple(int(s) for s in depth_size)
        self.depth_scale = depth_scale
        self.camera = working_camera(depth_intrinsic, depth_size, image_scale)
        self._colour = ColourSampler(color_intrinsic, color_size, self.camera)

    @classmethod
    def from_scene(cls, scene, image_scale: float = 1.0, scene_dir=None) -> "SceneFrames | None":
        """Frames of a loaded scene.h5 artifact; None for a scene without frames (point cloud)."""
        if "frames/id" not in scene or len(scene["frames/id"]) == 0:
            return None
        folder = Path(scene_dir or scene.attrs.get("scene_dir", ""))
        if not folder.is_dir():
            raise InputError(folder, f"scene folder named by {scene.path} is missing (frames are read from it)")
        return cls(folder, scene["frames/id"], scene["frames/pose"], scene["frames/valid"], scene["intrinsics/color"],
                   scene["intrinsics/depth"], scene["frames/color_size"], scene["frames/depth_size"], image_scale)

    def __len__(self) -> int:
        return len(self.frame_ids)

    @property
    def valid_indices(self) -> np.ndarray:
        return np.flatnonzero(self.valid)

    def pose(self, index: int) -> np.ndarray:
        return self.poses[index]

    def color(self, index: int) -> np.ndarray:
        path = scannet.frame_path(self.scene_dir, "color", int(self.frame_ids[index]))
        return self._colour(scannet.read_color(path))

    def depth(self, index: int) -> np.ndarray:
        path = scannet.frame_path(self.scene_dir, "depth", int(self.frame_ids[index]))
        depth = scannet.read_depth(path, self.depth_scale)
        if (depth.shape[1], depth.shape[0]) != self.depth_size:
            raise InputError(path, f"depth is {depth.shape[1]}x{depth.shape[0]}, scene.h5 says {self.depth_size}")
        return resize_nearest(depth, (self.camera.width, self.camera.height))

    def instance_path(self, index: int) -> Path:
        return self.scene_dir / "instance" / f"{int(self.frame_ids[index])}.png"

    def instance(self, index: int) -> np.ndarray:
        """Ground-truth objectId per pixel (-1 = nothing) from ``instance/<id>.png`` (objectId + 1)."""
        path = self.instance_path(index)
        if not path.is_file():
            raise InputError(path, "ground-truth instance image is missing (the oracle generator needs "
                                   "rendered instance maps, as synthetic scenes have)")
        raw = scannet.read_integer_image(path, "instance")
        return resize_nearest(raw.astype(np.int32) - 1, (self.camera.width, self.camera.height))
