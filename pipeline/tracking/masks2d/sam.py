"""Segment Anything (segment_anything 1.0) automatic masks.

The model is assembled from segment_anything's own modules (ImageEncoderViT, PromptEncoder,
MaskDecoder, TwoWayTransformer) with the dimensions of ``model_type`` (vit_b / vit_l / vit_h, the
released checkpoints), optionally changed by ``architecture`` (used for small test models), and
its weights are loaded strictly from ``checkpoint``. Masks come from SamAutomaticMaskGenerator
with its usual thresholds; each mask's score is the model's predicted IoU.
"""

from __future__ import annotations

import logging

import numpy as np

from pipeline.io.checkpoints import require_checkpoint
from pipeline.devices import resolve_device
from pipeline.tracking.masks2d.base import FrameInput, MaskGenerator, MaskSet, load_state_dict_strict

log = logging.getLogger(__name__)

# Dimensions of the released SAM models (the ViT sizes differ; prompt encoder and decoder do not).
_COMMON = {
    "image_size": 1024,
    "patch_size": 16,
    "prompt_embed_dim": 256,
    "window_size": 14,
    "mask_in_chans": 16,
    "decoder_depth": 2,
    "decoder_mlp_dim": 2048,
    "decoder_num_heads": 8,
    "iou_head_depth": 3,
    "iou_head_hidden_dim": 256,
}
ARCHITECTURES = {
    "vit_b": {**_COMMON, "encoder_embed_dim": 768, "encoder_depth": 12, "encoder_num_heads": 12,
              "encoder_global_attn_indexes": [2, 5, 8, 11]},
    "vit_l": {**_COMMON, "encoder_embed_dim": 1024, "encoder_depth": 24, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": [5, 11, 17, 23]},
    "vit_h": {**_COMMON, "encoder_embed_dim": 1280, "encoder_depth": 32, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": [7, 15, 23, 31]},
}

# SamAutomaticMaskGenerator's own defaults. min_mask_region_area stays 0: its clean-up needs OpenCV,
# and the stage drops masks below keyframe_masks.min_mask_area itself.
AMG_DEFAULTS = {
    "points_per_side": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1.0,
    "box_nms_thresh": 0.7,
    "crop_n_layers": 0,
    "crop_nms_thresh": 0.7,
    "crop_n_points_downscale_factor": 1,
}

DEFAULT_PARAMS = {"model_type": "vit_h", "checkpoint": None, "architecture": {}, **AMG_DEFAULTS}


def architecture_of(model_type: str, overrides: dict | None = None) -> dict:
    if model_type not in ARCHITECTURES:
        raise ValueError(f"unknown SAM model_type {model_type!r}; choose one of {sorted(ARCHITECTURES)}")
    unknown = set(overrides or {}) - set(ARCHITECTURES[model_type])
    if unknown:
        raise ValueError(f"unknown SAM architecture key(s) {sorted(unknown)}; known: {sorted(ARCHITECTURES[model_type])}")
    return {**ARCHITECTURES[model_type], **(overrides or {})}


def build_sam(arch: dict):
    """A randomly initialised segment_anything ``Sam`` with the given dimensions."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    embed = int(arch["prompt_embed_dim"])
    grid = int(arch["image_size"]) // int(arch["patch_size"])
    encoder = ImageEncoderViT(
        img_size=int(arch["image_size"]), patch_size=int(arch["patch_size"]), embed_dim=int(arch["encoder_embed_dim"]),
        depth=int(arch["encoder_depth"]), num_heads=int(arch["encoder_num_heads"]), mlp_ratio=4.0, out_chans=embed,
        qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        window_size=int(arch["window_size"]), global_attn_indexes=tuple(arch["encoder_global_attn_indexes"]),
    )
    prompt_encoder = PromptEncoder(embed_dim=embed, image_embedding_size=(grid, grid),
                                   input_image_size=(int(arch["image_size"]),) * 2, mask_in_chans=int(arch["mask_in_chans"]))
    decoder = MaskDecoder(
        transformer_dim=embed,
        transformer=TwoWayTransformer(depth=int(arch["decoder_depth"]), embedding_dim=embed,
                                      mlp_dim=int(arch["decoder_mlp_dim"]), num_heads=int(arch["decoder_num_heads"])),
        num_multimask_outputs=3, iou_head_depth=int(arch["iou_head_depth"]),
        iou_head_hidden_dim=int(arch["iou_head_hidden_dim"]),
    )
    # ImageNet statistics in 0..255, as SAM was trained with.
    return Sam(encoder, prompt_encoder, decoder, pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


class SamGenerator(MaskGenerator):
    name = "sam"

    def __init__(self, params: dict | None = None, device: str = "auto"):
        from segment_anything import SamAutomaticMaskGenerator

        p = {**DEFAULT_PARAMS, **(params or {})}
        checkpoint = require_checkpoint(p["checkpoint"], "SAM", "keyframe_masks.sam.checkpoint")
        arch = architecture_of(p["model_type"], p["architecture"])
        model = build_sam(arch)
        load_state_dict_strict(model, checkpoint, f"SAM {p['model_type']}")
        self.device = resolve_device(device)
        model.to(self.device).eval()
        self.model = model
        self.amg = SamAutomaticMaskGenerator(model, **{k: p[k] for k in AMG_DEFAULTS})

    def generate(self, frame: FrameInput) -> MaskSet:
        import torch

        with torch.inference_mode():
            records = self.amg.generate(np.ascontiguousarray(frame.color))
        height, width = frame.color.shape[:2]
        if not records:
            return MaskSet.empty(height, width)
        masks = np.stack([r["segmentation"] for r in records])
        return MaskSet(masks, np.array([r["predicted_iou"] for r in records], np.float32))
