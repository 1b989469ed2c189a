"""The instance network: sparse UNet -> superpoint pooling -> query decoder.

``prepare_scene`` turns one scene's arrays into tensors (voxel grid, superpoint index, normalised
superpoint centroids); ``InstanceNet`` maps them and a set of query positions to per-layer mask
and class logits over superpoints. Devices: everything follows ``device`` ("auto" = CUDA when
available, else CPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import numpy as np
import torch
from torch import nn

from pipeline.devices import resolve_device  # noqa: F401  (also imported from here)
from pipeline.learning.model.backbone import SparseUNet, voxel_mean, voxelize
from pipeline.learning.model.decoder import LayerOutput, QueryDecoder


@dataclass(frozen=True)
class ModelConfig:
    n_classes: int = 1  # object classes (the class head adds "no object")
    voxel_size: float = 0.02  # metres
    channels: tuple[int, ...] = (32, 64, 96, 128, 160)  # backbone width per level
    blocks: int = 2  # residual blocks per level
    hidden: int = 256  # decoder width
    heads: int = 8
    ffn: int = 1024
    layers: int = 6
    n_queries: int = 400
    rel_hidden: int = 32  # hidden size of the relative-position bias MLP
    dropout: float = 0.0

    def with_overrides(self, overrides: dict) -> "ModelConfig":
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown model option(s) {sorted(unknown)}; known: {sorted(known)}")
        values = dict(overrides)
        if "channels" in values:
            values["channels"] = tuple(int(c) for c in values["channels"])
        return replace(self, **values)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["channels"] = list(self.channels)
        return out


MODEL_PRESETS: dict[str, ModelConfig] = {
    # BEEP3D / MAFT: 6 decoder layers, 8 heads, hidden 256, feed-forward 1024.
    "paper": ModelConfig(),
    # Small enough to train on 2 CPU cores in minutes.
    "demo": ModelConfig(voxel_size=0.04, channels=(16, 32, 48), blocks=1, hidden=64, heads=4, ffn=128, layers=3,
                        n_queries=40, rel_hidden=16),
}

INPUT_CHANNELS = 6  # colour (centred RGB) + normal


@dataclass
class SceneTensors:
    """One scene ready for the network (possibly augmented)."""

    voxel_features: torch.Tensor  # (V, 6)
    voxel_coords: torch.Tensor  # (V, 3) int32
    spatial_shape: list[int]
    point_voxel: torch.Tensor  # (N,) int64
    point_superpoint: torch.Tensor  # (N,) int64
    n_superpoints: int
    sp_size: torch.Tensor  # (S,) float points per superpoint
    sp_coords: torch.Tensor  # (S, 3) normalised centroids in [0, 1]
    sp_centroid: np.ndarray  # (S, 3) centroids in metres (after augmentation)
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))  # metres -> normalised: (x - origin) / scale
    scale: float = 1.0

    def normalise(self, xyz) -> np.ndarray:
        return (np.asarray(xyz, np.float64) - self.origin) / self.scale

    def denormalise(self, coords: torch.Tensor) -> torch.Tensor:
        origin = torch.as_tensor(self.origin, dtype=coords.dtype, device=coords.device)
        return coords * self.scale + origin


def superpoint_centroids(points: np.ndarray, point_superpoint: np.ndarray, n_superpoints: int) -> tuple[np.ndarray, np.ndarray]:
    size = np.bincount(point_superpoint, minlength=n_superpoints).astype(np.float64)
    centroid = np.stack([np.bincount(point_superpoint, weights=points[:, a], minlength=n_superpoints) for a in range(3)], 1)
    return centroid / np.maximum(size, 1)[:, None], size


def prepare_scene(points, colors, normals, point_superpoint, voxel_size: float, device="cpu") -> SceneTensors:
    """Tensors of one scene: voxel features are the mean centred colour and normal of their points."""
    device = resolve_device(device)
    points = np.asarray(points, np.float64)
    point_superpoint = np.asarray(point_superpoint, np.int64)
    n_superpoints = int(point_superpoint.max()) + 1 if len(point_superpoint) else 0
    grid = voxelize(points, voxel_size)
    point_features = np.concatenate(
        [np.asarray(colors, np.float32) / 255.0 - 0.5, np.asarray(normals, np.float32)], axis=1
    )
    point_voxel = torch.from_numpy(grid.point_voxel).to(device)
    voxel_features = voxel_mean(torch.from_numpy(point_features).to(device), point_voxel, len(grid.coords))
    centroid, size = superpoint_centroids(points, point_superpoint, n_superpoints)
    origin = points.min(axis=0) if len(points) else np.zeros(3)
    scale = float(max(np.ptp(points, axis=0).max() if len(points) else 1.0, 1e-6))
    return SceneTensors(
        voxel_features=voxel_features,
        voxel_coords=torch.from_numpy(grid.coords).to(device),
        spatial_shape=grid.spatial_shape,
        point_voxel=point_voxel,
        point_superpoint=torch.from_numpy(point_superpoint).to(device),
        n_superpoints=n_superpoints,
        sp_size=torch.from_numpy(size).float().to(device),
        sp_coords=torch.from_numpy((centroid - origin) / scale).float().to(device),
        sp_centroid=centroid,
        origin=origin,
        scale=scale,
    )


@dataclass
class NetOutput:
    layers: list[LayerOutput]  # one per decoder layer, the last is the prediction
    mask_features: torch.Tensor  # (S, H) superpoint features the masks are computed from
    backbone_features: torch.Tensor | None = None  # (S, C) backbone point features averaged per superpoint

    @property
    def last(self) -> LayerOutput:
        return self.layers[-1]


class InstanceNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = SparseUNet(INPUT_CHANNELS, config.channels, config.blocks)
        self.decoder = QueryDecoder(
            config.channels[0], config.hidden, config.heads, config.ffn, config.layers, config.n_classes,
            config.rel_hidden, config.dropout,
        )

    def superpoint_features(self, scene: SceneTensors) -> torch.Tensor:
        """Backbone features averaged over each superpoint's points -> (S, C)."""
        voxel = self.backbone(scene.voxel_features, scene.voxel_coords, scene.spatial_shape)
        per_point = voxel[scene.point_voxel]
        total = torch.zeros(scene.n_superpoints, per_point.shape[1], dtype=per_point.dtype, device=per_point.device)
        total.index_add_(0, scene.point_superpoint, per_point)
        return total / scene.sp_size.clamp(min=1)[:, None]

    def forward(
        self,
        scene: SceneTensors,
        query_coords: torch.Tensor,
        position_refiner: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> NetOutput:
        sp_features = self.superpoint_features(scene)
        layers, mask_features, _ = self.decoder(sp_features, scene.sp_coords, query_coords, position_refiner)
        return NetOutput(layers, mask_features, sp_features)
