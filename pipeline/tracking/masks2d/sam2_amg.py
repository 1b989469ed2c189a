"""SAM 2 (sam2 1.1.0) automatic masks, and the SAM 2 model builder shared with the SAM 2 tracker.

Models are built by sam2's own hydra configs (``model_config``, e.g.
``configs/sam2.1/sam2.1_hiera_l.yaml``), optionally changed by ``hydra_overrides`` (hydra
``++key=value`` strings; the tests use them for a small model), and their weights are loaded
strictly from ``checkpoint``. sam2's CUDA extension is optional: without it sam2 only warns and
skips a hole-filling post-process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pipeline.errors import InputError
from pipeline.io.checkpoints import require_checkpoint
from pipeline.devices import resolve_device
from pipeline.tracking.masks2d.base import FrameInput, MaskGenerator, MaskSet, load_state_dict_strict

log = logging.getLogger(__name__)

# SAM2AutomaticMaskGenerator's own defaults (min_mask_region_area stays 0: its clean-up needs OpenCV).
AMG_DEFAULTS = {
    "points_per_side": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.8,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1.0,
    "mask_threshold": 0.0,
    "box_nms_thresh": 0.7,
    "crop_n_layers": 0,
    "crop_nms_thresh": 0.7,
    "crop_n_points_downscale_factor": 1,
    "use_m2m": False,
    "multimask_output": True,
}

DEFAULT_PARAMS = {
    "model_config": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "checkpoint": None,
    "hydra_overrides": [],
    **AMG_DEFAULTS,
}


def available_configs() -> list[str]:
    import sam2

    root = Path(sam2.__path__[0])
    return sorted(str(p.relative_to(root)) for p in (root / "configs").rglob("*.yaml"))


def _no_progress_bar(iterable, *args, **kwargs):
    return iterable


def _quiet_progress_bars() -> None:
    """sam2 draws a tqdm bar for every frame-loading and propagation call: one per tracked frame
    here, which only floods the job's stderr. Replace the name those modules call."""
    import sam2.sam2_video_predictor
    import sam2.utils.misc

    sam2.sam2_video_predictor.tqdm = _no_progress_bar
    sam2.utils.misc.tqdm = _no_progress_bar


def build_sam2_model(model_config: str, hydra_overrides=(), device: str = "cpu", video: bool = False,
                     checkpoint: str | os.PathLike | None = None, config_key: str = "sam2.checkpoint"):
    """A sam2 model (``SAM2VideoPredictor`` when ``video``) with weights from ``checkpoint`` (strict).

    ``checkpoint=None`` is only for building a fresh random model (tests); the stages require one.
    """
    _quiet_progress_bars()
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    if model_config not in available_configs():
        raise InputError(None, f"unknown SAM 2 model_config {model_config!r}; sam2 ships: {', '.join(available_configs())}")
    build = build_sam2_video_predictor if video else build_sam2
    try:
        # apply_postprocessing adds sam2's recommended inference-time overrides.
        model = build(model_config, ckpt_path=None, device=device, mode="eval",
                      hydra_overrides_extra=list(hydra_overrides), apply_postprocessing=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise InputError(None, f"cannot build SAM 2 from {model_config} with overrides {list(hydra_overrides)}: {exc}") from None
    if checkpoint is not None:
        load_state_dict_strict(model, checkpoint, f"SAM 2 ({model_config})")
    model.eval()
    return model


def fix_feature_sizes(predictor, image_size: int) -> None:
    """SAM2ImagePredictor assumes 1024-pixel models; tell it this model's backbone feature sizes."""
    predictor._bb_feat_sizes = [(image_size // 4,) * 2, (image_size // 8,) * 2, (image_size // 16,) * 2]


class Sam2Generator(MaskGenerator):
    name = "sam2"

    def __init__(self, params: dict | None = None, device: str = "auto"):
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

        p = {**DEFAULT_PARAMS, **(params or {})}
        checkpoint = require_checkpoint(p["checkpoint"], "SAM 2", "keyframe_masks.sam2.checkpoint")
        self.device = resolve_device(device)
        self.model = build_sam2_model(p["model_config"], p["hydra_overrides"], self.device, video=False,
                                      checkpoint=checkpoint)
        self.amg = SAM2AutomaticMaskGenerator(self.model, **{k: p[k] for k in AMG_DEFAULTS})
        fix_feature_sizes(self.amg.predictor, int(self.model.image_size))

    def generate(self, frame: FrameInput) -> MaskSet:
        import torch

        with torch.inference_mode():
            records = self.amg.generate(np.ascontiguousarray(frame.color))
        height, width = frame.color.shape[:2]
        if not records:
            return MaskSet.empty(height, width)
        masks = np.stack([r["segmentation"] for r in records])
        return MaskSet(masks, np.array([r["predicted_iou"] for r in records], np.float32))
