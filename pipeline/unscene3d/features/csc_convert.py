"""Released CSC weights (MinkowskiEngine Res16UNet) -> this project's spconv Res16UNet checkpoint.

Contrastive Scene Contexts publishes its pre-trained Res16UNet34C as a PyTorch checkpoint of a
MinkowskiEngine model (``{'state_dict': ..., 'optimizer': ..., ...}``; keys such as
``conv0p1s1.kernel``, ``bn0.bn.weight``, ``block1.0.conv1.kernel``, ``convtr4p16s2.kernel``,
``final.kernel``). This module maps such a state dict onto :class:`pipeline.unscene3d.features.csc.Res16UNet`:

* names: ``conv0p1s1`` -> ``conv0``, ``conv{l}p{s}s2`` -> ``down.{l-1}``, ``bn{l}`` -> ``down_norm.{l-1}``,
  ``block{l}`` -> ``encoder.{l-1}`` (l <= 4) or ``decoder.{l-5}``, ``convtr{l}p{s}s2`` -> ``up.{l-4}``,
  ``bntr{l}`` -> ``up_norm.{l-4}``, ``X.bn.Y`` (MinkowskiBatchNorm) -> ``X.Y``, ``kernel`` -> ``weight``;
* kernels: ME's ``(K, in, out)`` rows, ordered by ME's kernel offsets, become spconv's
  ``(out, kx, ky, kz, in)``; the block convolutions use ME's HYBRID offset order, every other one
  the HYPERCUBE order (see ``minkowski_reference``); 1x1 kernels ``(in, out)`` become
  ``(out, 1, 1, 1, in)`` (``csc.Pointwise``), the ``(1, out)`` bias ``(out,)``.

The architecture (widths, blocks per stage, first kernel size, output width) is read off the
state dict, then every key and shape is checked against it; errors name the file and the keys.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import torch

from pipeline.io.checkpoints import load_checked_state_dict, read_torch_file
from pipeline.errors import InputError
from pipeline.unscene3d.features.csc import Res16UNet, Res16UNetArch, save_csc_checkpoint
from pipeline.unscene3d.features.minkowski_reference import hybrid_offsets, hypercube_offsets

log = logging.getLogger(__name__)

ANCHOR_KEY = "conv0p1s1.kernel"  # the first layer of every CSC Res16UNet
BN_PARAMS = ("weight", "bias", "running_mean", "running_var")
SOURCE_URL = "http://kaldir.vc.in.tum.de/3dsis/contrastive_scene_contexts/pretrain/partition8_4096_100k.pth"


def _listing(items: list[str], limit: int = 8) -> str:
    return f"{len(items)} [{', '.join(items[:limit])}{' ...' if len(items) > limit else ''}]"


# --- finding the state dict -------------------------------------------------------------------

def minkowski_state_dict(content, source) -> dict[str, torch.Tensor]:
    """The ME Res16UNet state dict inside a loaded checkpoint, with any common key prefix
    (``module.`` from DistributedDataParallel, ``encoder.`` ...) removed."""
    state = content.get("state_dict", content) if isinstance(content, dict) else None
    if not isinstance(state, dict) or not state:
        raise InputError(source, f"not a PyTorch state dict or a checkpoint with 'state_dict' (found {type(content).__name__})")
    anchors = [k for k in state if isinstance(k, str) and k.endswith(ANCHOR_KEY)]
    if len(anchors) != 1:
        shown = _listing(sorted(map(str, state)))
        raise InputError(source, f"not a MinkowskiEngine Res16UNet (CSC) checkpoint: expected one key "
                                 f"'{ANCHOR_KEY}', found keys {shown}")
    prefix = anchors[0][: -len(ANCHOR_KEY)]
    outside = sorted(k for k in state if not k.startswith(prefix))
    if outside:
        raise InputError(source, f"keys outside the model prefix {prefix!r}: {_listing(outside)}")
    return {k[len(prefix):]: v for k, v in state.items()}


def is_minkowski_checkpoint(content) -> bool:
    state = content.get("state_dict", content) if isinstance(content, dict) else None
    return isinstance(state, dict) and any(isinstance(k, str) and k.endswith(ANCHOR_KEY) for k in state)


# --- the architecture and the expected keys -----------------------------------------------------

def _shape(state: dict, key: str, source) -> tuple:
    if key not in state:
        raise InputError(source, f"missing key {key!r} (needed to read the architecture)")
    return tuple(state[key].shape)


def _cube_edge(volume: int, key: str, source) -> int:
    edge = round(volume ** (1 / 3))
    if edge ** 3 != volume:
        raise InputError(source, f"{key}: kernel volume {volume} is not a cube (3D hypercube kernel expected)")
    return edge


def infer_arch(state: dict, source, voxel_size: float = 0.02, normalize_output: bool = True) -> Res16UNetArch:
    """Read in/out channels, widths, blocks per stage and the first kernel size off the state dict."""
    if any(re.match(r"block\d+\.\d+\.conv3\.", k) for k in state):
        raise InputError(source, "Bottleneck blocks (Res16UNet50/101) are not supported; CSC's Res16UNet34C uses BasicBlocks")
    conv0 = _shape(state, ANCHOR_KEY, source)
    if len(conv0) == 2:
        in_channels, init_dim, k0 = conv0[0], conv0[1], 1
    elif len(conv0) == 3:
        in_channels, init_dim, k0 = conv0[1], conv0[2], _cube_edge(conv0[0], ANCHOR_KEY, source)
    else:
        raise InputError(source, f"{ANCHOR_KEY} has shape {conv0}; expected (K, in, out)")
    planes, layers = [], []
    for stage in range(1, 9):
        blocks = sorted({int(m.group(1)) for k in state if (m := re.match(rf"block{stage}\.(\d+)\.conv1\.kernel$", k))})
        if not blocks:
            raise InputError(source, f"missing key 'block{stage}.0.conv1.kernel' (stage {stage} of 8 has no blocks)")
        if blocks != list(range(len(blocks))):
            raise InputError(source, f"stage block{stage} has blocks {blocks}; expected 0..{len(blocks) - 1}")
        shape = _shape(state, f"block{stage}.0.conv1.kernel", source)
        planes.append(int(shape[-1]))
        layers.append(len(blocks))
    final = _shape(state, "final.kernel", source)
    return Res16UNetArch(in_channels=int(in_channels), out_channels=int(final[-1]), init_dim=int(init_dim), planes=planes,
                         layers=layers, conv1_kernel_size=int(k0), voxel_size=float(voxel_size),
                         normalize_output=bool(normalize_output))


def layer_table(arch: Res16UNetArch) -> list[tuple[str, str, str, tuple]]:
    """(ME name, spconv name, kind, shape) for every layer; kind is 'bn', 'bias' or the kernel
    kind 'hypercube' / 'hybrid' / 'matrix' (1x1), shape the ME shape of the kernel (or channels)."""
    p, n, d = arch.planes, arch.layers, arch.init_dim
    k0 = arch.conv1_kernel_size
    rows = [("conv0p1s1", "conv0", "hypercube" if k0 > 1 else "matrix",
             (k0 ** 3, arch.in_channels, d) if k0 > 1 else (arch.in_channels, d)),
            ("bn0", "norm0", "bn", (d,))]

    def blocks(me_stage: str, sp_stage: str, inplanes: int, planes: int, count: int):
        for j in range(count):
            me, sp, width = f"{me_stage}.{j}", f"{sp_stage}.{j}", inplanes if j == 0 else planes
            rows.extend([(f"{me}.conv1", f"{sp}.conv1", "hybrid", (27, width, planes)),
                         (f"{me}.norm1", f"{sp}.norm1", "bn", (planes,)),
                         (f"{me}.conv2", f"{sp}.conv2", "hybrid", (27, planes, planes)),
                         (f"{me}.norm2", f"{sp}.norm2", "bn", (planes,))])
            if width != planes:
                rows.extend([(f"{me}.downsample.0", f"{sp}.downsample.0", "matrix", (width, planes)),
                             (f"{me}.downsample.1", f"{sp}.downsample.1", "bn", (planes,))])

    inplanes = d
    for level in range(4):
        rows.append((f"conv{level + 1}p{2 ** level}s2", f"down.{level}", "hypercube", (8, inplanes, inplanes)))
        rows.append((f"bn{level + 1}", f"down_norm.{level}", "bn", (inplanes,)))
        blocks(f"block{level + 1}", f"encoder.{level}", inplanes, p[level], n[level])
        inplanes = p[level]
    skips = [p[2], p[1], p[0], d]
    for level in range(4):
        out = p[4 + level]
        rows.append((f"convtr{level + 4}p{2 ** (4 - level)}s2", f"up.{level}", "hypercube", (8, inplanes, out)))
        rows.append((f"bntr{level + 4}", f"up_norm.{level}", "bn", (out,)))
        blocks(f"block{level + 5}", f"decoder.{level}", out + skips[level], out, n[4 + level])
        inplanes = out
    rows.append(("final", "final", "matrix", (p[7], arch.out_channels)))
    rows.append(("final", "final", "bias", (1, arch.out_channels)))
    return rows


def expected_shapes(arch: Res16UNetArch) -> dict[str, tuple]:
    """Every key of the ME state dict and its shape (``num_batches_tracked`` is optional)."""
    shapes = {}
    for me, _, kind, shape in layer_table(arch):
        if kind == "bn":
            shapes.update({f"{me}.bn.{name}": shape for name in BN_PARAMS})
            shapes[f"{me}.bn.num_batches_tracked"] = ()
        elif kind == "bias":
            shapes[f"{me}.bias"] = shape
        else:
            shapes[f"{me}.kernel"] = shape
    return shapes


def _shape_fits(key: str, got: tuple, want: tuple) -> bool:
    if got == want:
        return True
    # Equivalent layouts across ME versions: a 1x1 kernel stored as (1, in, out), a bias as (out,).
    if key.endswith(".kernel") and len(want) == 2 and got == (1, *want):
        return True
    return key.endswith(".bias") and len(want) == 2 and got == want[1:]


def check_minkowski_state(state: dict, arch: Res16UNetArch, source) -> None:
    """Raise InputError naming every missing, unexpected and mis-shaped key."""
    want = expected_shapes(arch)
    optional = {k for k in want if k.endswith("num_batches_tracked")}
    missing = [k for k in want if k not in state and k not in optional]
    unexpected = [k for k in state if k not in want]
    wrong = [f"{k} {tuple(state[k].shape)} != {want[k]}" for k in want
             if k in state and not _shape_fits(k, tuple(state[k].shape), want[k])]
    problems = []
    if missing:
        problems.append(f"missing keys {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listing(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes {_listing(wrong, 4)}")
    if problems:
        arch_text = f"Res16UNet planes {arch.planes}, layers {arch.layers}, init_dim {arch.init_dim}"
        raise InputError(source, f"MinkowskiEngine state dict does not fit a {arch_text}: " + "; ".join(problems))


# --- the conversion ---------------------------------------------------------------------------

def spconv_kernel(kernel: torch.Tensor, offsets: np.ndarray) -> torch.Tensor:
    """ME kernel (K, in, out) with one offset per row -> spconv weight (out, k, k, k, in).

    spconv correlates like ME (``out[u] += W[:, i, j, l, :] @ in[u + (i, j, l) - centre]``, the
    first index along the first coordinate axis); even kernels start at offset 0, as in ME."""
    kernel = torch.as_tensor(kernel)
    size = int(offsets.max() - offsets.min()) + 1
    position = offsets - offsets.min(axis=0)  # odd sizes: -(k//2).. -> 0..; even sizes already start at 0
    if len(kernel) != size ** 3 or len(np.unique(position, axis=0)) != size ** 3:
        raise ValueError(f"{len(kernel)} kernel rows do not fill a {size}^3 cube of offsets")
    weight = kernel.new_zeros((kernel.shape[2], size, size, size, kernel.shape[1]))
    weight[:, position[:, 0], position[:, 1], position[:, 2], :] = kernel.permute(2, 0, 1)
    return weight


def convert_state_dict(state: dict, arch: Res16UNetArch) -> dict[str, torch.Tensor]:
    """ME state dict (already checked) -> state dict of ``Res16UNet(arch)``."""
    out = {}
    for me, sp, kind, shape in layer_table(arch):
        if kind == "bn":
            for name in BN_PARAMS:
                out[f"{sp}.{name}"] = state[f"{me}.bn.{name}"].detach().clone().float()
            tracked = state.get(f"{me}.bn.num_batches_tracked")
            out[f"{sp}.num_batches_tracked"] = torch.tensor(0) if tracked is None else tracked.detach().reshape(()).long().clone()
        elif kind == "bias":
            out[f"{sp}.bias"] = state[f"{me}.bias"].detach().reshape(-1).clone().float()
        elif kind == "matrix":
            matrix = state[f"{me}.kernel"].detach().float().reshape(shape)
            out[f"{sp}.weight"] = matrix.t().reshape(shape[1], 1, 1, 1, shape[0]).clone()
        else:
            size = round(shape[0] ** (1 / 3))
            offsets = hybrid_offsets(size) if kind == "hybrid" else hypercube_offsets(size)
            out[f"{sp}.weight"] = spconv_kernel(state[f"{me}.kernel"].detach().float(), offsets)
    return out


def convert_checkpoint_content(content, source, voxel_size: float = 0.02,
                               normalize_output: bool = True) -> tuple[Res16UNet, Res16UNetArch]:
    """Loaded ME checkpoint -> (spconv model with the converted weights, its architecture)."""
    state = minkowski_state_dict(content, source)
    arch = infer_arch(state, source, voxel_size, normalize_output)
    check_minkowski_state(state, arch, source)
    model = Res16UNet(arch)
    load_checked_state_dict(model, convert_state_dict(state, arch), Path(str(source)), "converted CSC checkpoint")
    return model.eval(), arch


def convert_csc_checkpoint(source: str | os.PathLike, out: str | os.PathLike, voxel_size: float = 0.02,
                           normalize_output: bool = True) -> tuple[Path, Res16UNetArch]:
    """Read a released CSC (MinkowskiEngine) checkpoint and write it in this project's format."""
    source = Path(os.path.expanduser(str(source)))
    if not source.is_file():
        raise InputError(source, "CSC checkpoint file is missing")
    model, arch = convert_checkpoint_content(read_torch_file(source), source, voxel_size, normalize_output)
    path = save_csc_checkpoint(out, model, arch)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("converted %s (%d parameters, planes %s, layers %s, %d -> %d channels) to %s",
             source, n_params, arch.planes, arch.layers, arch.in_channels, arch.out_channels, path)
    return path, arch
