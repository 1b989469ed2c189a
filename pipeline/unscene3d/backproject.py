"""Back-projection of per-pixel 2D features onto scene points (UnScene3D's 2D feature lifting).

For each sampled frame every scene point is moved into the camera (pose = camera-to-world,
OpenCV convention: x right, y down, z forward) and projected twice:

- with the **depth** intrinsics, to read the depth image at the nearest depth pixel; the point is
  visible when that reading is valid and |z_point - depth| < ``depth_tolerance`` (a point behind
  a surface is further than the depth the camera measured there, so it fails the test);
- with the **colour** intrinsics, to sample the frame's feature map bilinearly (the feature map
  belongs to the colour image, which may have another resolution than the depth image).

Each visible (frame, point) pair adds the sampled feature to a running mean of that point and
increments its visibility count. Frames are consumed as a stream of small batches, so peak memory
is the accumulator (N x C) plus one batch, whatever the number of frames.

Pixel convention: the projection u = fx * x / z + cx gives pixel *centres* at integer u; a pixel
i covers [i - 0.5, i + 0.5). Feature maps describe their sampling grid with an affine map from
colour pixel coordinates to feature-grid coordinates (``FeatureBatch.scale``/``offset``), so a
backend with any stride or resizing places its features exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch

from pipeline.devices import resolve_device

# Pairs sampled per step are capped so that pairs x channels stays about this many floats.
SAMPLE_BUDGET_FLOATS = 1 << 22

_log = logging.getLogger(__name__)


@dataclass
class FeatureBatch:
    """Feature maps of a batch of colour images and where their grid lies in the colour image.

    ``features`` (B, C, h, w). Feature cell (row j, column i) sits at colour pixel coordinates
    u = (i - offset[0]) / scale[0], v = (j - offset[1]) / scale[1]; i.e. grid = scale * pixel + offset.
    """

    features: torch.Tensor
    scale: tuple[float, float]
    offset: tuple[float, float]

    @staticmethod
    def for_resized_image(features: torch.Tensor, image_size: tuple[int, int], cell_size: float = 1.0,
                          cell_stride: float = 1.0, input_size: tuple[int, int] | None = None) -> "FeatureBatch":
        """Grid mapping for maps computed on the colour image resized to ``input_size`` (w, h).

        Cell i covers input pixels [i * stride, i * stride + cell_size) (a ViT patch, or one pixel
        with cell_size = stride = 1), so its centre in input pixel-edge coordinates is
        i * stride + cell_size / 2.
        """
        width, height = image_size
        in_w, in_h = input_size or image_size
        scale, offset = [], []
        for size, in_size in ((width, in_w), (height, in_h)):
            factor = in_size / size  # colour pixel -> input pixel
            # grid = ((u + 0.5) * factor - cell/2) / stride
            scale.append(factor / cell_stride)
            offset.append((0.5 * factor - cell_size / 2) / cell_stride)
        return FeatureBatch(features, (scale[0], scale[1]), (offset[0], offset[1]))


@dataclass
class FrameBatch:
    """A batch of frames: depth in metres (0 = no reading), camera-to-world poses, feature maps."""

    frame_ids: np.ndarray  # (B,)
    depth: torch.Tensor  # (B, Hd, Wd) float32 metres
    pose: torch.Tensor  # (B, 4, 4) camera-to-world
    features: FeatureBatch


@dataclass
class Cameras:
    intrinsic_color: np.ndarray  # (4, 4) or (3, 3)
    intrinsic_depth: np.ndarray
    color_size: tuple[int, int]  # (w, h)
    depth_size: tuple[int, int]


def select_frames(frame_ids: np.ndarray, valid: np.ndarray, every: int) -> np.ndarray:
    """Every ``every``-th frame among those with a valid pose (UnScene3D samples every 20th)."""
    if every < 1:
        raise ValueError(f"frame sampling step must be >= 1, got {every}")
    return np.asarray(frame_ids)[np.asarray(valid, bool)][::every]


def project(points_cam: torch.Tensor, intrinsic: torch.Tensor) -> torch.Tensor:
    """(..., 3) camera-space points -> (..., 2) pixel coordinates (u, v) with the pinhole model."""
    z = points_cam[..., 2].clamp_min(1e-9)
    u = intrinsic[0, 0] * points_cam[..., 0] / z + intrinsic[0, 2]
    v = intrinsic[1, 1] * points_cam[..., 1] / z + intrinsic[1, 2]
    return torch.stack((u, v), dim=-1)


def to_camera(points: torch.Tensor, camera_to_world: torch.Tensor) -> torch.Tensor:
    """(N, 3) world points, (B, 4, 4) poses -> (B, N, 3) camera-space points."""
    world_to_camera = torch.linalg.inv(camera_to_world)
    rotation = world_to_camera[:, :3, :3]
    translation = world_to_camera[:, :3, 3]
    return torch.einsum("bij,nj->bni", rotation, points) + translation[:, None, :]


def depth_visibility(points_cam: torch.Tensor, depth: torch.Tensor, intrinsic_depth: torch.Tensor,
                     tolerance: float, min_depth: float = 0.05) -> torch.Tensor:
    """(B, N) bool: the point is in front of the camera, inside the depth image, the depth pixel
    it falls on has a reading, and |z - depth| < tolerance (occluded points fail)."""
    batch, height, width = depth.shape
    z = points_cam[..., 2]
    uv = project(points_cam, intrinsic_depth)
    col = torch.round(uv[..., 0])
    row = torch.round(uv[..., 1])
    inside = (z > min_depth) & (col >= 0) & (col <= width - 1) & (row >= 0) & (row <= height - 1)
    flat = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).long()
    measured = torch.gather(depth.reshape(batch, -1), 1, flat)
    return inside & (measured > 0) & ((z - measured).abs() < tolerance)


def inside_image(uv: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(…,) bool: pixel coordinates fall inside a (w, h) image (pixel i spans [i-0.5, i+0.5))."""
    width, height = size
    return (uv[..., 0] >= -0.5) & (uv[..., 0] <= width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= height - 0.5)


def bilinear_sample(features: torch.Tensor, batch_index: torch.Tensor, grid_xy: torch.Tensor) -> torch.Tensor:
    """Sample (B, C, h, w) maps at (K, 2) grid coordinates (x = column, y = row) of frames
    ``batch_index`` (K,); coordinates are clamped to the grid (border extension). Returns (K, C)."""
    _, channels, height, width = features.shape
    x = grid_xy[:, 0].clamp(0, width - 1)
    y = grid_xy[:, 1].clamp(0, height - 1)
    x0 = x.floor().long().clamp(max=width - 2) if width > 1 else torch.zeros_like(x, dtype=torch.long)
    y0 = y.floor().long().clamp(max=height - 2) if height > 1 else torch.zeros_like(y, dtype=torch.long)
    x1 = (x0 + 1).clamp(max=width - 1)
    y1 = (y0 + 1).clamp(max=height - 1)
    wx = (x - x0).unsqueeze(1)
    wy = (y - y0).unsqueeze(1)
    flat = features.permute(0, 2, 3, 1).reshape(-1, channels)  # (B*h*w, C)
    base = batch_index.long() * (height * width)

    def at(row, col):
        return flat[base + row * width + col]

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


class RunningMean:
    """Per-point running mean of features with a count of contributions.

    ``update`` merges any number of (point, value) pairs, duplicates included, exactly:
    mean_new = mean + sum(value - mean) / count_new, so the result equals the mean of everything
    seen, whatever the batching.
    """

    def __init__(self, n_points: int, n_channels: int, device: torch.device):
        self.mean = torch.zeros((n_points, n_channels), dtype=torch.float32, device=device)
        self.count = torch.zeros(n_points, dtype=torch.int64, device=device)

    def update(self, point_index: torch.Tensor, values: torch.Tensor) -> None:
        if point_index.numel() == 0:
            return
        unique, inverse = torch.unique(point_index, return_inverse=True)
        delta = torch.zeros((len(unique), self.mean.shape[1]), dtype=torch.float32, device=self.mean.device)
        delta.index_add_(0, inverse, values.float() - self.mean[point_index])
        self.count[unique] += torch.bincount(inverse, minlength=len(unique))
        self.mean[unique] += delta / self.count[unique].unsqueeze(1).float()


@dataclass
class BackprojectionResult:
    features: np.ndarray  # (N, C) float32 mean feature of each point (zero where never visible)
    visibility: np.ndarray  # (N,) int32 number of frames in which the point was visible
    frames_used: np.ndarray  # (F,) ids of the frames consumed
    frames_with_visible_points: int


def accumulate_batch(accumulator: RunningMean, points: torch.Tensor, batch: FrameBatch, cameras: Cameras,
                     depth_tolerance: float, intrinsic_color: torch.Tensor, intrinsic_depth: torch.Tensor) -> torch.Tensor:
    """Add one frame batch to the running means; returns (B,) visible-point counts per frame."""
    device = points.device
    pose = batch.pose.to(device=device, dtype=torch.float64)
    points_cam = to_camera(points.double(), pose).float()
    depth = batch.depth.to(device=device, dtype=torch.float32)
    visible = depth_visibility(points_cam, depth, intrinsic_depth, depth_tolerance)
    uv_color = project(points_cam, intrinsic_color)
    visible &= inside_image(uv_color, cameras.color_size)
    frame_index, point_index = torch.nonzero(visible, as_tuple=True)
    features = batch.features.features.to(device)
    scale = torch.tensor(batch.features.scale, device=device, dtype=torch.float32)
    offset = torch.tensor(batch.features.offset, device=device, dtype=torch.float32)
    step = max(1, SAMPLE_BUDGET_FLOATS // max(1, features.shape[1]))
    for start in range(0, len(point_index), step):
        f_idx = frame_index[start:start + step]
        p_idx = point_index[start:start + step]
        grid = uv_color[f_idx, p_idx] * scale + offset
        accumulator.update(p_idx, bilinear_sample(features, f_idx, grid))
    return visible.sum(dim=1)


class Backprojector:
    """Running back-projection of frame batches onto fixed points; its state can be saved and restored.

    A restored state continues exactly (same float32 running means), so a resumed run equals an
    uninterrupted one.
    """

    def __init__(self, points: np.ndarray, cameras: Cameras, n_channels: int, depth_tolerance: float = 0.05,
                 device: str = "auto"):
        self.device = resolve_device(device)
        self.cameras = cameras
        self.n_channels = n_channels
        self.depth_tolerance = depth_tolerance
        self.points = torch.as_tensor(np.asarray(points), dtype=torch.float32, device=self.device)
        self.k_color = torch.as_tensor(np.asarray(cameras.intrinsic_color, np.float32)[:3, :3], device=self.device)
        self.k_depth = torch.as_tensor(np.asarray(cameras.intrinsic_depth, np.float32)[:3, :3], device=self.device)
        self.accumulator = RunningMean(len(self.points), n_channels, self.device)
        self.frames_used: list[int] = []
        self.frames_seeing = 0

    def add(self, batch: FrameBatch) -> None:
        if batch.features.features.shape[1] != self.n_channels:
            raise ValueError(f"feature maps have {batch.features.features.shape[1]} channels, expected {self.n_channels}")
        with torch.no_grad():
            counts = accumulate_batch(self.accumulator, self.points, batch, self.cameras, self.depth_tolerance,
                                      self.k_color, self.k_depth)
        self.frames_seeing += int((counts > 0).sum())
        self.frames_used.extend(int(i) for i in np.asarray(batch.frame_ids))

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.accumulator.mean.cpu().numpy(), "count": self.accumulator.count.cpu().numpy(),
                "frames_used": np.asarray(self.frames_used, np.int64), "frames_seeing": np.asarray(self.frames_seeing)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        if state["mean"].shape != tuple(self.accumulator.mean.shape):
            raise ValueError(f"saved means have shape {state['mean'].shape}, expected {tuple(self.accumulator.mean.shape)}")
        self.accumulator.mean = torch.as_tensor(state["mean"], device=self.device).clone()
        self.accumulator.count = torch.as_tensor(state["count"], device=self.device).clone()
        self.frames_used = [int(i) for i in state["frames_used"]]
        self.frames_seeing = int(state["frames_seeing"])

    def result(self) -> BackprojectionResult:
        return BackprojectionResult(
            features=self.accumulator.mean.cpu().numpy(),
            visibility=self.accumulator.count.cpu().numpy().astype(np.int32),
            frames_used=np.asarray(self.frames_used, np.int64),
            frames_with_visible_points=self.frames_seeing,
        )


def backproject_features(points: np.ndarray, batches: Iterable[FrameBatch], cameras: Cameras,
                         n_channels: int, depth_tolerance: float = 0.05, device: str = "auto") -> BackprojectionResult:
    """Mean feature of every point over the frames in which it passes the depth test.

    ``batches`` is consumed lazily (a generator reading frames keeps memory flat).
    """
    projector = Backprojector(points, cameras, n_channels, depth_tolerance, device)
    for number, batch in enumerate(batches, start=1):
        projector.add(batch)
        if number % 10 == 0:
            _log.info("back-projected %d frames", len(projector.frames_used))
    return projector.result()


def batched(items: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
