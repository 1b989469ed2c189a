"""A slow, plain numpy model of MinkowskiEngine's sparse convolution and of CSC's Res16UNet.

MinkowskiEngine (ME) does not install here, so the CSC converter (``csc_convert``) is tested
against this transcription of what ME computes. It is written for reading, not speed: every
convolution is a loop over kernel offsets with a dictionary of coordinates.

Conventions transcribed from MinkowskiEngine 0.4.3 (the version the CSC weights were trained
with; 0.5 keeps them) and from CSC's ``Res16UNetBase``:

* Coordinates are integers on the input grid; a tensor of *tensor stride* ``s`` has coordinates
  that are multiples of ``s`` (ME keeps the original scale instead of dividing).
* A convolution kernel has shape ``(K, in, out)`` (``(in, out)`` for a 1x1x1 kernel with stride 1,
  which ME runs as a matrix product), a bias ``(1, out)``. Kernel row ``k`` belongs to offset
  ``offsets[k]``: ``out[u] = sum_k in[u + offsets[k] * s] @ kernel[k]`` (a correlation).
* Kernel offsets of a HYPERCUBE region run with the first spatial axis fastest; an odd size ``k``
  spans ``-(k//2) .. k//2``, an even size spans ``0 .. k-1`` (ME's ``kernel_region``/``Region``).
  CSC's block convolutions use the HYBRID region instead (``SPATIAL_HYPERCUBE_TEMPORAL_HYPERCROSS``
  with D = 3), which ME turns into a CUSTOM list of offsets in a different order
  (``convert_region_type``): see :func:`hybrid_offsets`.
* A stride-``t`` convolution outputs the coordinates ``floor(u / (s t)) * s t`` of its input
  (ME's strided coordinate map) and gathers the offsets around them with step ``s``.
* A transposed convolution with up-stride ``t`` outputs onto the existing coordinate map of
  stride ``s / t`` (the encoder's, in Res16UNet) and scatters:
  ``out[c + offsets[k] * s / t] += in[c] @ kernel[k]``.
* Batch norm is ``torch.nn.BatchNorm1d`` in eval mode (eps 1e-5), on the features only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

import numpy as np

BN_EPS = 1e-5


def hypercube_offsets(kernel_size: int) -> np.ndarray:
    """(k^3, 3) offsets of ME's HYPERCUBE region, first axis fastest (in tensor-stride units)."""
    if kernel_size % 2:
        steps = range(-(kernel_size // 2), kernel_size // 2 + 1)
    else:
        steps = range(kernel_size)
    # itertools.product runs its last argument fastest: pass (z, y, x) and reverse the columns.
    return np.array([(x, y, z) for z, y, x in product(steps, steps, steps)], dtype=np.int64)


def hybrid_offsets(kernel_size: int) -> np.ndarray:
    """(k^3, 3) offsets of ME's HYBRID region with every axis HYPERCUBE, in ME's order.

    ME starts from the origin and, axis by axis, appends every offset found so far moved by each
    non-zero step along that axis (``convert_region_type``, RegionType.HYBRID)."""
    centre = (kernel_size - 1) // 2
    offsets = [[0, 0, 0]]
    for axis in range(3):
        added = []
        for offset in offsets:
            for step in range(kernel_size):
                if step == centre:
                    continue
                moved = list(offset)
                moved[axis] = step - centre
                added.append(moved)
        offsets.extend(added)
    return np.array(offsets, dtype=np.int64)


@dataclass
class SparseTensor:
    coords: np.ndarray  # (N, 3) int64, multiples of stride
    feats: np.ndarray  # (N, C) float64
    stride: int = 1


def _index(coords: np.ndarray) -> dict:
    return {tuple(c): i for i, c in enumerate(coords.tolist())}


def _as_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, np.float64)
    return kernel[None] if kernel.ndim == 2 else kernel


def convolution(x: SparseTensor, kernel: np.ndarray, offsets: np.ndarray, stride: int = 1,
                bias: np.ndarray | None = None) -> SparseTensor:
    """ME's MinkowskiConvolution (``offsets`` in ME's kernel order, one per kernel row)."""
    kernel = _as_kernel(kernel)
    assert len(kernel) == len(offsets), "one kernel row per offset"
    out_stride = x.stride * stride
    if stride == 1:
        out_coords = x.coords
    else:
        out_coords = np.unique(np.floor_divide(x.coords, out_stride) * out_stride, axis=0)
    lookup = _index(x.coords)
    out = np.zeros((len(out_coords), kernel.shape[2]))
    for k, offset in enumerate(np.asarray(offsets)):
        wanted = out_coords + offset * x.stride
        found = np.array([lookup.get(tuple(c), -1) for c in wanted.tolist()], dtype=np.int64)
        hit = found >= 0
        out[hit] += x.feats[found[hit]] @ kernel[k]
    if bias is not None:
        out += np.asarray(bias, np.float64).reshape(1, -1)
    return SparseTensor(out_coords, out, out_stride)


def convolution_transpose(x: SparseTensor, kernel: np.ndarray, offsets: np.ndarray, up_stride: int,
                          out_coords: np.ndarray) -> SparseTensor:
    """ME's MinkowskiConvolutionTranspose onto an existing coordinate map of stride s / up_stride."""
    kernel = _as_kernel(kernel)
    out_stride = x.stride // up_stride
    lookup = _index(out_coords)
    out = np.zeros((len(out_coords), kernel.shape[2]))
    for k, offset in enumerate(np.asarray(offsets)):
        targets = x.coords + offset * out_stride
        found = np.array([lookup.get(tuple(c), -1) for c in targets.tolist()], dtype=np.int64)
        hit = found >= 0
        np.add.at(out, found[hit], x.feats[hit] @ kernel[k])
    return SparseTensor(out_coords, out, out_stride)


def batch_norm(x: SparseTensor, state: dict, prefix: str) -> SparseTensor:
    """MinkowskiBatchNorm (a torch BatchNorm1d at ``prefix + 'bn.'``) in eval mode."""
    p = {name: np.asarray(state[f"{prefix}bn.{name}"], np.float64) for name in ("weight", "bias", "running_mean", "running_var")}
    feats = (x.feats - p["running_mean"]) / np.sqrt(p["running_var"] + BN_EPS) * p["weight"] + p["bias"]
    return SparseTensor(x.coords, feats, x.stride)


def relu(x: SparseTensor) -> SparseTensor:
    return SparseTensor(x.coords, np.maximum(x.feats, 0.0), x.stride)


def cat(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    """ME's ``cat``: both tensors must live on the same coordinate map."""
    assert a.stride == b.stride and np.array_equal(a.coords, b.coords), "cat needs one coordinate map"
    return SparseTensor(a.coords, np.concatenate((a.feats, b.feats), axis=1), a.stride)


def add(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    assert a.stride == b.stride and np.array_equal(a.coords, b.coords)
    return SparseTensor(a.coords, a.feats + b.feats, a.stride)


def _kernel_size(kernel: np.ndarray) -> int:
    """Edge length of a cubic kernel from its volume (1 for an (in, out) matrix)."""
    kernel = np.asarray(kernel)
    if kernel.ndim == 2:
        return 1
    size = round(len(kernel) ** (1 / 3))
    assert size ** 3 == len(kernel), f"kernel volume {len(kernel)} is not a cube"
    return size


def basic_block(x: SparseTensor, state: dict, prefix: str) -> SparseTensor:
    """CSC's BasicBlock: HYBRID 3x3x3 convolutions, residual through a 1x1 projection if present."""
    out = convolution(x, state[f"{prefix}conv1.kernel"], hybrid_offsets(3))
    out = relu(batch_norm(out, state, f"{prefix}norm1."))
    out = convolution(out, state[f"{prefix}conv2.kernel"], hybrid_offsets(3))
    out = batch_norm(out, state, f"{prefix}norm2.")
    residual = x
    if f"{prefix}downsample.0.kernel" in state:
        residual = convolution(x, state[f"{prefix}downsample.0.kernel"], hypercube_offsets(1))
        residual = batch_norm(residual, state, f"{prefix}downsample.1.")
    return relu(add(out, residual))


def stage(x: SparseTensor, state: dict, name: str) -> SparseTensor:
    blocks = sorted({int(m.group(1)) for key in state if (m := re.match(rf"{name}\.(\d+)\.", key))})
    for j in blocks:
        x = basic_block(x, state, f"{name}.{j}.")
    return x


def res16unet_forward(state: dict, coords: np.ndarray, feats: np.ndarray, normalize_feature: bool = False) -> dict:
    """CSC's Res16UNetBase.forward on one scene: every layer's output, by ME module name.

    ``state`` is the MinkowskiEngine state dict (numpy arrays); the output dict holds the
    tensors after ``conv0p1s1``, ``conv{i}p{s}s2``, ``block{i}``, ``convtr{i}p{s}s2`` (before their
    batch norm) and ``final`` (normalised to unit length when ``normalize_feature``, as in CSC's
    pre-training model)."""
    state = {k: np.asarray(v) for k, v in state.items()}
    layers = {}
    x = SparseTensor(np.asarray(coords, np.int64), np.asarray(feats, np.float64), 1)
    kernel = state["conv0p1s1.kernel"]
    x = layers["conv0p1s1"] = convolution(x, kernel, hypercube_offsets(_kernel_size(kernel)))
    skips = [relu(batch_norm(x, state, "bn0."))]
    x = skips[0]
    for level in range(1, 5):
        name = f"conv{level}p{2 ** (level - 1)}s2"
        x = layers[name] = convolution(x, state[f"{name}.kernel"], hypercube_offsets(2), stride=2)
        x = relu(batch_norm(x, state, f"bn{level}."))
        x = layers[f"block{level}"] = stage(x, state, f"block{level}")
        skips.append(x)
    for level in range(4, 8):
        name = f"convtr{level}p{2 ** (8 - level)}s2"
        skip = skips[7 - level]
        x = layers[name] = convolution_transpose(x, state[f"{name}.kernel"], hypercube_offsets(2), 2, skip.coords)
        x = cat(relu(batch_norm(x, state, f"bntr{level}.")), skip)
        x = layers[f"block{level + 1}"] = stage(x, state, f"block{level + 1}")
    out = convolution(x, state["final.kernel"], hypercube_offsets(1), bias=state.get("final.bias"))
    if normalize_feature:
        out = SparseTensor(out.coords, out.feats / np.linalg.norm(out.feats, axis=1, keepdims=True), out.stride)
    layers["final"] = out
    return layers
