"""DINO ViT-S/8 dense features (the 2D backbone of UnScene3D), built with timm.

The network is timm's ``vit_small_patch8_224`` created without a download (``pretrained=False``,
``dynamic_img_size=True``, no classification head) and filled from the official DINO checkpoint
(``dino_deitsmall8_pretrain.pth``: a plain state dict whose keys ``cls_token``, ``pos_embed``,
``patch_embed.proj.*``, ``blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``,
``norm.*`` coincide with timm's). A full DINO *training* checkpoint (``{"teacher": ...}``) is also
accepted: its teacher backbone is used, the ``module.``/``backbone.`` prefixes are removed and the
DINO projection head (``head.*``, not part of the ViT) is dropped. Loading is strict: any missing,
unexpected or mis-shaped key is listed in the error.

Dense features follow UnScene3D / "Deep ViT features as dense visual descriptors" (Amir et al.):
the *key* facet of a late block (0-based ``layer``; 10 = the 11th of 12), heads concatenated,
computed with the patch embedding's stride reduced from 8 to ``stride`` (4) for a denser grid; the
position embedding is resampled by timm for the actual grid. Images are resized so the short side
is ``short_side`` pixels (UnScene3D: 480x640 x 0.4 = 192x256), each side snapped to a multiple of 8.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.unscene3d.backproject import FeatureBatch
from pipeline.io.checkpoints import load_checked_state_dict, read_torch_file, require_checkpoint
from pipeline.errors import InputError
from pipeline.params import DINO

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(DINO)  # features_2d.dino
FACETS = ("query", "key", "value", "token")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_dino_vit(arch: str = "vit_small_patch8_224", overrides: dict | None = None) -> torch.nn.Module:
    """The ViT as timm builds it, random weights, no head, any image size."""
    import timm

    kwargs = {"pretrained": False, "dynamic_img_size": True, "num_classes": 0, **(overrides or {})}
    return timm.create_model(arch, **kwargs)


def dino_to_timm_state_dict(state: dict) -> dict:
    """Map a DINO checkpoint (plain backbone state dict or full training checkpoint) to timm keys."""
    if "teacher" in state and isinstance(state["teacher"], dict):
        state = {k: v for k, v in state["teacher"].items()}
        for prefix in ("module.", "backbone."):
            state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
        return {k: v for k, v in state.items() if not k.startswith("head.")}
    for wrapper in ("state_dict", "model"):
        if wrapper in state and isinstance(state[wrapper], dict):
            return dict(state[wrapper])
    return dict(state)


def load_dino_vit(path: str | os.PathLike | None, arch: str = "vit_small_patch8_224", overrides: dict | None = None) -> torch.nn.Module:
    """Build the ViT and load a DINO checkpoint strictly; eval mode."""
    path = require_checkpoint(path, "DINO", "features_2d.dino.checkpoint")
    content = read_torch_file(path)
    if not isinstance(content, dict):
        raise InputError(path, f"expected a state dict, found {type(content).__name__}")
    model = build_dino_vit(arch, overrides)
    load_checked_state_dict(model, dino_to_timm_state_dict(content), path, "DINO checkpoint")
    return model.eval()


def input_size(size: tuple[int, int], short_side: int, patch: int) -> tuple[int, int]:
    """(w, h) with the short side about ``short_side``, each a multiple of the patch size."""
    width, height = size
    factor = short_side / min(width, height)
    return (max(patch, round(width * factor / patch) * patch), max(patch, round(height * factor / patch) * patch))


def set_patch_stride(model: torch.nn.Module, stride: int) -> None:
    patch = model.patch_embed.patch_size[0]
    if not 1 <= stride <= patch or patch % stride:
        raise ValueError(f"DINO stride must divide the patch size {patch}, got {stride}")
    model.patch_embed.proj.stride = (stride, stride)


def facet_features(model: torch.nn.Module, images: torch.Tensor, layer: int, facet: str) -> torch.Tensor:
    """(B, 3, H, W) normalised images -> (B, D, gh, gw) facet of block ``layer`` (heads concatenated)."""
    n_blocks = len(model.blocks)
    index = layer if layer >= 0 else n_blocks + layer
    if not 0 <= index < n_blocks:
        raise ValueError(f"DINO layer {layer} out of range for a {n_blocks}-block ViT")
    if facet not in FACETS:
        raise ValueError(f"DINO facet must be one of {FACETS}, got {facet!r}")
    x = model.patch_embed(images)  # (B, gh, gw, D) with dynamic_img_size
    batch, grid_h, grid_w, dim = x.shape
    x = model.norm_pre(model.patch_drop(model._pos_embed(x)))
    for block in model.blocks[:index]:
        x = block(x)
    block = model.blocks[index]
    if facet == "token":
        out = block(x)
    else:
        qkv = block.attn.qkv(block.norm1(x)).reshape(batch, x.shape[1], 3, dim)
        out = qkv[:, :, FACETS.index(facet)]
    prefix = x.shape[1] - grid_h * grid_w  # class (and register) tokens
    return out[:, prefix:].reshape(batch, grid_h, grid_w, dim).permute(0, 3, 1, 2).contiguous()


@dataclass
class DinoFeatures:
    """Callable 2D backend: (B, H, W, 3) uint8 images -> FeatureBatch of (B, D, gh, gw)."""

    model: torch.nn.Module
    params: dict = field(default_factory=dict)
    device: torch.device = torch.device("cpu")

    def __post_init__(self):
        self.params = {**DEFAULT_PARAMS, **self.params}
        self.model = self.model.to(self.device).eval()
        set_patch_stride(self.model, int(self.params["stride"]))

    @classmethod
    def from_params(cls, params: dict, device: torch.device) -> "DinoFeatures":
        p = {**DEFAULT_PARAMS, **params}
        return cls(load_dino_vit(p["checkpoint"], p["arch"], p["arch_overrides"]), p, device)

    @property
    def feature_dim(self) -> int:
        return int(self.model.embed_dim)

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> FeatureBatch:
        patch = self.model.patch_embed.patch_size[0]
        batch = torch.as_tensor(np.asarray(images), device=self.device).permute(0, 3, 1, 2).float() / 255.0
        height, width = batch.shape[2:]
        in_w, in_h = input_size((width, height), int(self.params["short_side"]), patch)
        batch = F.interpolate(batch, size=(in_h, in_w), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        features = facet_features(self.model, (batch - mean) / std, int(self.params["layer"]), self.params["facet"])
        return FeatureBatch.for_resized_image(
            features.float(), (width, height), cell_size=patch, cell_stride=int(self.params["stride"]), input_size=(in_w, in_h)
        )
