"""Sparse-voxel UNet backbone (spconv): points -> voxels -> per-voxel features.

Submanifold 3x3x3 convolutions keep the voxel set fixed within a level; strided 2x2x2 sparse
convolutions go down a level and their inverses come back up, with skip connections as in
SPFormer / MAFT backbones. BatchNorm always uses the statistics of the current scene (no running
buffers), so training and inference normalise alike and the EMA teacher is a pure parameter average.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

_CPU_BACKWARD_PATCHED = False
log = logging.getLogger(__name__)


def enable_spconv_cpu_backward() -> None:
    """Let spconv's CPU backward pass run on machines without a CUDA driver.

    spconv 2.3's native backward asks torch for the current CUDA stream before it checks whether
    the tensors live on the CPU (where the stream is never used); without a driver that call
    raises. When CUDA is unavailable we answer "stream 0" instead. Nothing changes on GPUs.
    """
    global _CPU_BACKWARD_PATCHED
    if _CPU_BACKWARD_PATCHED or torch.cuda.is_available():
        return
    import spconv.pytorch.ops as spconv_ops

    spconv_ops.get_current_stream = lambda: 0
    _CPU_BACKWARD_PATCHED = True


def single_thread_for_spconv_on_cpu() -> None:
    """Run torch on one CPU thread while spconv works on CPU tensors.

    spconv 2.3's CPU convolutions give different (wrong) sums from call to call when torch has
    several intra-op threads (measured: feature differences up to 0.1 after one submanifold
    convolution with 2 threads, none with 1), so the CPU path is kept single-threaded.
    """
    if torch.get_num_threads() != 1:
        log.warning("spconv on CPU is not thread-safe: using 1 torch thread instead of %d", torch.get_num_threads())
        torch.set_num_threads(1)


@dataclass
class VoxelGrid:
    coords: np.ndarray  # (V, 3) int32 voxel indices, >= 0
    point_voxel: np.ndarray  # (N,) int64 voxel of each point
    spatial_shape: list[int]  # grid extent per axis


def voxelize(points: np.ndarray, voxel_size: float) -> VoxelGrid:
    """Group points into cubic voxels of ``voxel_size`` metres (voxels sorted lexicographically)."""
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size}")
    cells = np.floor(np.asarray(points, np.float64) / voxel_size).astype(np.int64)
    cells -= cells.min(axis=0, initial=0) if len(cells) else 0
    coords, point_voxel = np.unique(cells, axis=0, return_inverse=True)
    shape = (coords.max(axis=0) + 1).tolist() if len(coords) else [1, 1, 1]
    return VoxelGrid(coords.astype(np.int32), point_voxel.reshape(-1).astype(np.int64), [int(s) + 1 for s in shape])


def voxel_mean(values: torch.Tensor, point_voxel: torch.Tensor, n_voxels: int) -> torch.Tensor:
    """Mean of per-point ``values`` (N, C) within each voxel -> (V, C)."""
    total = torch.zeros(n_voxels, values.shape[1], dtype=values.dtype, device=values.device)
    total.index_add_(0, point_voxel, values)
    count = torch.bincount(point_voxel, minlength=n_voxels).clamp(min=1).to(values.dtype)
    return total / count[:, None]


def _norm_act(channels: int) -> nn.Module:
    return nn.Sequential(nn.BatchNorm1d(channels, eps=1e-4, track_running_stats=False), nn.ReLU())


class _Residual(nn.Module):
    """Pre-activation residual block of two submanifold convolutions."""

    def __init__(self, in_channels: int, out_channels: int, key: str):
        super().__init__()
        import spconv.pytorch as spconv

        self.skip = (
            nn.Identity() if in_channels == out_channels else spconv.SubMConv3d(in_channels, out_channels, 1, bias=False)
        )
        self.norm1 = _norm_act(in_channels)
        self.conv1 = spconv.SubMConv3d(in_channels, out_channels, 3, padding=1, bias=False, indice_key=key)
        self.norm2 = _norm_act(out_channels)
        self.conv2 = spconv.SubMConv3d(out_channels, out_channels, 3, padding=1, bias=False, indice_key=key)

    def forward(self, x):
        identity = self.skip(x) if not isinstance(self.skip, nn.Identity) else x
        out = self.conv1(x.replace_feature(self.norm1(x.features)))
        out = self.conv2(out.replace_feature(self.norm2(out.features)))
        return out.replace_feature(out.features + identity.features)


class SparseUNet(nn.Module):
    """UNet over a sparse voxel grid; returns features (V, channels[0]) in the input voxel order."""

    def __init__(self, in_channels: int, channels: list[int] | tuple[int, ...], blocks: int = 2):
        super().__init__()
        import spconv.pytorch as spconv

        enable_spconv_cpu_backward()
        channels = list(channels)
        if not channels:
            raise ValueError("the backbone needs at least one level of channels")
        self.channels = channels
        self.stem = spconv.SubMConv3d(in_channels, channels[0], 3, padding=1, bias=False, indice_key="subm0")
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level, width in enumerate(channels):
            key = f"subm{level}"
            self.encoders.append(nn.ModuleList([_Residual(width, width, key) for _ in range(blocks)]))
            if level + 1 < len(channels):
                self.downs.append(nn.ModuleDict({
                    "norm": _norm_act(width),
                    "conv": spconv.SparseConv3d(width, channels[level + 1], 2, stride=2, bias=False, indice_key=f"down{level}"),
                }))
                self.ups.append(nn.ModuleDict({
                    "norm": _norm_act(channels[level + 1]),
                    "conv": spconv.SparseInverseConv3d(channels[level + 1], width, 2, bias=False, indice_key=f"down{level}"),
                }))
                self.decoders.append(nn.ModuleList(
                    [_Residual(2 * width if i == 0 else width, width, key) for i in range(blocks)]
                ))
        self.out_norm = _norm_act(channels[0])

    def forward(self, features: torch.Tensor, coords: torch.Tensor, spatial_shape: list[int]) -> torch.Tensor:
        import spconv.pytorch as spconv

        if not features.is_cuda:
            single_thread_for_spconv_on_cpu()
        indices = torch.cat([torch.zeros_like(coords[:, :1]), coords], dim=1).int()
        x = spconv.SparseConvTensor(features, indices, spatial_shape, batch_size=1)
        x = self.stem(x)
        skips = []
        for level, blocks in enumerate(self.encoders):
            for block in blocks:
                x = block(x)
            if level + 1 < len(self.encoders):
                skips.append(x)
                down = self.downs[level]
                x = down["conv"](x.replace_feature(down["norm"](x.features)))
        for level in range(len(self.encoders) - 2, -1, -1):
            up = self.ups[level]
            x = up["conv"](x.replace_feature(up["norm"](x.features)))
            x = x.replace_feature(torch.cat([skips[level].features, x.features], dim=1))
            for block in self.decoders[level]:
                x = block(x)
        return self.out_norm(x.features)
