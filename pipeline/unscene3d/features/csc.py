"""CSC-style 3D features: a Res16UNet sparse-convolution network built with spconv.

UnScene3D takes its 3D features from a Res16UNet34C pre-trained with Contrastive Scene Contexts
(CSC, Hou et al. 2021) in MinkowskiEngine. This module builds the same encoder-decoder layout with
``spconv.pytorch`` (submanifold 3x3x3 convolutions inside a resolution, 2x2x2 stride-2 convolutions
down, inverse convolutions up, skip concatenation, BasicBlock residual stages) and runs it on the
voxelised scene (coloured voxels, features rgb/255 - 0.5 as in CSC).

Checkpoint format (this project's; ``save_csc_checkpoint`` writes it)::

    torch.save({"format": "res16unet-spconv", "version": 1,
                "arch": {"in_channels": 3, "out_channels": 96, "init_dim": 32,
                         "planes": [32, 64, 128, 256, 256, 128, 96, 96],
                         "layers": [2, 3, 4, 6, 2, 2, 2, 2], "conv1_kernel_size": 3,
                         "voxel_size": 0.02, "normalize_output": False},
                "state_dict": model.state_dict()}, path)

Loading is strict (missing, unexpected and mis-shaped keys are listed). The released CSC weights
are a MinkowskiEngine model: ``python -m pipeline convert-csc RELEASED.pth --out csc_spconv.pth``
(``pipeline/unscene3d/features/csc_convert.py``) writes them in this format, and ``load_csc_checkpoint``
also converts such a file on load. ``arch.normalize_output`` scales the final features to unit
length, as CSC's pre-training model does (``net.normalize_feature``).

Voxels sit on the absolute grid ``floor(xyz / voxel_size)`` (shifted by a multiple of 16 voxels to
keep indices >= 0), as in MinkowskiEngine, so the stride-2 levels group the same voxels as there.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.io.atomic import atomic_path
from pipeline.errors import InputError
from pipeline.io.checkpoints import load_checked_state_dict, read_torch_file, require_checkpoint
from pipeline.params import CSC

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "res16unet-spconv"
CHECKPOINT_VERSION = 1
# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(CSC)  # features_3d.csc


@dataclass
class Res16UNetArch:
    in_channels: int = 3
    out_channels: int = 96
    init_dim: int = 32
    planes: list = field(default_factory=lambda: [32, 64, 128, 256, 256, 128, 96, 96])
    layers: list = field(default_factory=lambda: [2, 3, 4, 6, 2, 2, 2, 2])
    conv1_kernel_size: int = 3
    voxel_size: float = 0.02
    normalize_output: bool = False  # unit-length final features (CSC pre-training's normalize_feature)

    @staticmethod
    def small() -> "Res16UNetArch":
        """A tiny configuration with the same structure (tests, quick runs)."""
        return Res16UNetArch(out_channels=16, init_dim=8, planes=[8, 16, 16, 16, 16, 16, 8, 8], layers=[1] * 8)

    @classmethod
    def from_dict(cls, values: dict, source) -> "Res16UNetArch":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(source, f"unknown architecture key(s) {unknown} (known: {sorted(known)})")
        arch = cls(**values)
        if len(arch.planes) != 8 or len(arch.layers) != 8:
            raise InputError(source, "architecture needs 8 'planes' and 8 'layers' entries (Res16UNet)")
        return arch


def _spconv():
    import spconv.pytorch as spconv

    return spconv


class Pointwise(nn.Module):
    """A 1x1x1 convolution on the features, with spconv's parameter names and shapes
    (``weight`` (out, 1, 1, 1, in), ``bias`` (out,)).

    spconv 2.3's own 1x1 ``SubMConv3d`` multiplies by ``weight.view(in, out)``, which is not the
    (out, 1, 1, 1, in) layout its other kernels use, so a kernel written in that layout (a converted
    one) would be scrambled; this module computes ``features @ weight.view(out, in).T + bias``."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, 1, 1, 1, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight.view(out_channels, in_channels), a=5 ** 0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = features @ self.weight.view(self.weight.shape[0], -1).t()
        return out if self.bias is None else out + self.bias


class BasicBlock(nn.Module):
    """Two submanifold 3x3x3 convolutions with a residual (1x1x1 projection when widths differ)."""

    def __init__(self, inplanes: int, planes: int, key: str):
        super().__init__()
        sp = _spconv()
        self.conv1 = sp.SubMConv3d(inplanes, planes, 3, bias=False, indice_key=key)
        self.norm1 = nn.BatchNorm1d(planes)
        self.conv2 = sp.SubMConv3d(planes, planes, 3, bias=False, indice_key=key)
        self.norm2 = nn.BatchNorm1d(planes)
        self.downsample = None
        if inplanes != planes:
            self.downsample = nn.Sequential(Pointwise(inplanes, planes), nn.BatchNorm1d(planes))

    def forward(self, x):
        residual = x.features if self.downsample is None else self.downsample(x.features)
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.norm1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.norm2(out.features) + residual))


def _stage(inplanes: int, planes: int, blocks: int, key: str) -> nn.Module:
    return nn.Sequential(*[BasicBlock(inplanes if i == 0 else planes, planes, key) for i in range(blocks)])


class Res16UNet(nn.Module):
    """Encoder (4 stride-2 stages) / decoder (4 inverse stages with skips), as Res16UNet in CSC."""

    def __init__(self, arch: Res16UNetArch):
        super().__init__()
        sp = _spconv()
        self.arch = arch
        p, n, d = arch.planes, arch.layers, arch.init_dim
        self.conv0 = sp.SubMConv3d(arch.in_channels, d, arch.conv1_kernel_size, bias=False, indice_key="subm1")
        self.norm0 = nn.BatchNorm1d(d)
        downs, down_norms, stages = [], [], []
        inplanes = d
        for level in range(4):
            downs.append(sp.SparseConv3d(inplanes, inplanes, 2, stride=2, bias=False, indice_key=f"down{level + 1}"))
            down_norms.append(nn.BatchNorm1d(inplanes))
            stages.append(_stage(inplanes, p[level], n[level], f"subm{level + 2}"))
            inplanes = p[level]
        ups, up_norms, up_stages = [], [], []
        skip_widths = [p[2], p[1], p[0], d]
        for level in range(4):
            out = p[4 + level]
            ups.append(sp.SparseInverseConv3d(inplanes, out, 2, bias=False, indice_key=f"down{4 - level}"))
            up_norms.append(nn.BatchNorm1d(out))
            up_stages.append(_stage(out + skip_widths[level], out, n[4 + level], f"subm{4 - level}"))
            inplanes = out
        self.down, self.down_norm, self.encoder = nn.ModuleList(downs), nn.ModuleList(down_norms), nn.ModuleList(stages)
        self.up, self.up_norm, self.decoder = nn.ModuleList(ups), nn.ModuleList(up_norms), nn.ModuleList(up_stages)
        self.final = Pointwise(p[7], arch.out_channels, bias=True)

    def forward(self, x) -> dict[int, object]:
        """Sparse tensor in; {stride: sparse tensor} out (1 = final layer, 2..16 = decoder stages)."""
        x = self.conv0(x)
        x = x.replace_feature(torch.relu(self.norm0(x.features)))
        skips = [x]
        for down, norm, stage in zip(self.down, self.down_norm, self.encoder):
            x = down(x)
            x = stage(x.replace_feature(torch.relu(norm(x.features))))
            skips.append(x)
        outputs = {16: x}
        for level, (up, norm, stage) in enumerate(zip(self.up, self.up_norm, self.decoder)):
            x = up(x)
            x = x.replace_feature(torch.cat((torch.relu(norm(x.features)), skips[3 - level].features), dim=1))
            x = stage(x)
            outputs[2 ** (3 - level)] = x
        final = x.replace_feature(self.final(x.features))
        if self.arch.normalize_output:
            final = final.replace_feature(final.features / final.features.norm(dim=1, keepdim=True).clamp_min(1e-12))
        outputs[1] = final
        return outputs


def save_csc_checkpoint(path: str | os.PathLike, model: Res16UNet, arch: Res16UNetArch) -> Path:
    """Write the checkpoint atomically (a temporary file beside ``path``, renamed when complete)."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "arch": asdict(arch),
                    "state_dict": model.state_dict()}, tmp)
    return Path(path)


def load_csc_checkpoint(path: str | os.PathLike | None) -> tuple[Res16UNet, Res16UNetArch]:
    """Read a checkpoint in this project's format, build the network it describes, load strictly.

    A released CSC checkpoint (MinkowskiEngine Res16UNet) is converted on load instead, with the
    converter's defaults (see ``csc_convert``); ``convert-csc`` does it once, ahead of time."""
    path = require_checkpoint(path, "CSC", "features_3d.csc.checkpoint")
    content = read_torch_file(path)
    from pipeline.unscene3d.features import csc_convert

    if not (isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT) \
            and csc_convert.is_minkowski_checkpoint(content):
        log.info("%s is a MinkowskiEngine (released CSC) checkpoint: converting it on load", path)
        return csc_convert.convert_checkpoint_content(content, path)
    found = sorted(content)[:8] if isinstance(content, dict) else type(content).__name__
    if not isinstance(content, dict) or not {"format", "state_dict", "arch"} <= set(content) \
            or content["format"] != CHECKPOINT_FORMAT:
        raise InputError(path, f"not a {CHECKPOINT_FORMAT!r} checkpoint: expected keys 'format', 'version', 'arch', "
                               f"'state_dict' (found {found}); see pipeline/unscene3d/features/csc.py")
    if int(content.get("version", -1)) != CHECKPOINT_VERSION:
        raise InputError(path, f"checkpoint version {content.get('version')} is not {CHECKPOINT_VERSION}")
    arch = Res16UNetArch.from_dict(dict(content["arch"]), path)
    model = Res16UNet(arch)
    load_checked_state_dict(model, content["state_dict"], path, "CSC checkpoint")
    return model.eval(), arch


def voxelize(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer voxel coordinates (V, 3) >= 0 and the voxel of each point (N,).

    Voxels are MinkowskiEngine's ``floor(xyz / voxel_size)``, shifted by a multiple of 16 so that
    the four stride-2 levels pool the same voxels together as the MinkowskiEngine model would."""
    grid = np.floor(np.asarray(points, np.float64) / voxel_size).astype(np.int64)
    grid -= np.floor_divide(grid.min(axis=0), 16) * 16
    voxels, point_voxel = np.unique(grid, axis=0, return_inverse=True)
    return voxels.astype(np.int32), point_voxel.reshape(-1)


@contextmanager
def single_cpu_thread(device: torch.device):
    """spconv 2.3's CPU stride-2 convolution races when torch uses several threads (some output
    voxels get wrong sums, intermittently); on CPU the network therefore runs single-threaded."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def csc_point_features(model: Res16UNet, points: np.ndarray, colors: np.ndarray, feature_level: int = 1,
                       device: torch.device = torch.device("cpu")) -> np.ndarray:
    """(N, C) features of every point: the network runs on voxels, each point takes its voxel's
    feature at the chosen decoder stride."""
    sp = _spconv()
    arch = model.arch
    if feature_level not in (1, 2, 4, 8, 16):
        raise ValueError(f"feature_level must be 1, 2, 4, 8 or 16, got {feature_level}")
    voxels, point_voxel = voxelize(np.asarray(points, np.float64), arch.voxel_size)
    n_voxels = len(voxels)
    color = torch.as_tensor(np.asarray(colors, np.float32) / 255.0 - 0.5)
    inverse = torch.as_tensor(point_voxel)
    voxel_color = torch.zeros((n_voxels, 3)).index_add_(0, inverse, color)
    voxel_color /= torch.bincount(inverse, minlength=n_voxels).clamp_min(1).unsqueeze(1).float()
    if arch.in_channels != 3:
        raise ValueError(f"this network expects {arch.in_channels} input channels; points provide colour (3)")
    # Spatial extent padded to a multiple of 16 so four stride-2 levels keep every voxel.
    shape = ((voxels.max(axis=0) + 1 + 15) // 16 * 16).tolist()
    indices = torch.cat((torch.zeros((n_voxels, 1), dtype=torch.int32), torch.as_tensor(voxels)), dim=1)
    model = model.to(device).eval()
    tensor = sp.SparseConvTensor(voxel_color.to(device), indices.to(device), shape, 1)
    with single_cpu_thread(torch.device(device)):
        out = model(tensor)[feature_level]
    if feature_level == 1:
        return out.features.float().cpu().numpy()[point_voxel]
    # Coarser levels: voxel coordinates divide by the stride (stride-2 convs with 2x2x2 kernels).
    coarse = out.indices[:, 1:].cpu().numpy().astype(np.int64)
    scale = np.maximum(coarse.max(axis=0) + 2, np.asarray(shape) // feature_level + 1)
    keys = np.ravel_multi_index(coarse.T, scale)
    order = np.argsort(keys)
    wanted = np.ravel_multi_index((voxels.astype(np.int64) // feature_level).T, scale)
    rows = order[np.searchsorted(keys[order], wanted)]
    return out.features.float().cpu().numpy()[rows][point_voxel]
