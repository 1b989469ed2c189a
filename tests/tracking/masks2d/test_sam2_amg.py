"""SAM 2 automatic masks with a tiny randomly initialised model built by sam2's own hydra configs.

The stock tiny config runs at seconds per frame on a CPU; these overrides shrink it (one block per
Hiera stage, 32-wide features, 128-pixel input) while keeping every module of the architecture.
"""

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.tracking.masks2d.base import FrameInput, build_generator
from pipeline.tracking.masks2d.sam2_amg import build_sam2_model

TINY_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
_D = 32  # transformer width everywhere
TINY_SAM2_OVERRIDES = [
    "++model.image_size=128",
    "++model.image_encoder.trunk.embed_dim=8",
    "++model.image_encoder.trunk.num_heads=1",
    "++model.image_encoder.trunk.stages=[1,1,1,1]",
    "++model.image_encoder.trunk.global_att_blocks=[]",
    "++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]",
    "++model.image_encoder.trunk.window_spec=[4,4,4,2]",
    f"++model.image_encoder.neck.d_model={_D}",
    f"++model.image_encoder.neck.position_encoding.num_pos_feats={_D}",
    "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
    f"++model.memory_attention.d_model={_D}",
    "++model.memory_attention.num_layers=1",
    f"++model.memory_attention.layer.d_model={_D}",
    "++model.memory_attention.layer.dim_feedforward=64",
    f"++model.memory_attention.layer.self_attention.embedding_dim={_D}",
    "++model.memory_attention.layer.self_attention.feat_sizes=[8,8]",
    f"++model.memory_attention.layer.cross_attention.embedding_dim={_D}",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[8,8]",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=16",
    "++model.memory_encoder.out_dim=16",
    f"++model.memory_encoder.in_dim={_D}",
    f"++model.memory_encoder.mask_downsampler.embed_dim={_D}",
    "++model.memory_encoder.position_encoding.num_pos_feats=16",
    f"++model.memory_encoder.fuser.layer.dim={_D}",
    "++model.memory_encoder.fuser.num_layers=1",
]
LOOSE = {"points_per_side": 4, "points_per_batch": 16, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def save_tiny_sam2(path, video: bool = False):
    """A fresh tiny SAM 2 saved as sam2's release format ({"model": state_dict}); returns the state.

    For video, the object-presence head is set to always say "present": with random weights it
    would otherwise decide at random that tracked objects vanished.
    """
    torch.manual_seed(0)
    model = build_sam2_model(TINY_CONFIG, TINY_SAM2_OVERRIDES, "cpu", video=video)
    if video:
        head = model.sam_mask_decoder.pred_obj_score_head.layers[-1]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(10.0)
    torch.save({"model": model.state_dict()}, path)
    return model.state_dict()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("sam2") / "tiny_sam2.pt"
    return path, save_tiny_sam2(path)


def sam2_params(checkpoint):
    return {"model_config": TINY_CONFIG, "hydra_overrides": TINY_SAM2_OVERRIDES, "checkpoint": str(checkpoint), **LOOSE}


def test_tiny_sam2_loads_its_checkpoint_and_generates_masks(tiny_checkpoint):
    path, saved = tiny_checkpoint
    gen = build_generator("sam2", sam2_params(path), device="cpu")
    for key, value in gen.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    image = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    result = gen.generate(FrameInput(image))
    assert result.masks.shape[1:] == (60, 80) and len(result) >= 1
    assert np.all(np.isfinite(result.scores))


def test_sam2_checkpoint_from_another_config_is_refused(tiny_checkpoint):
    path, _ = tiny_checkpoint
    wider = [o for o in TINY_SAM2_OVERRIDES if "trunk.embed_dim" not in o] + ["++model.image_encoder.trunk.embed_dim=16"]
    params = {**sam2_params(path), "hydra_overrides": wider + ["++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]"]}
    with pytest.raises(InputError, match="does not match the architecture") as err:
        build_generator("sam2", params, device="cpu")
    assert str(path) in str(err.value)


def test_unknown_sam2_config_and_missing_checkpoint_are_clear_errors(tiny_checkpoint, tmp_path):
    path, _ = tiny_checkpoint
    with pytest.raises(InputError, match="sam2.1_hiera_l.yaml"):  # the message lists the shipped configs
        build_generator("sam2", {**sam2_params(path), "model_config": "configs/sam9/nope.yaml"}, device="cpu")
    with pytest.raises(InputError, match="missing"):
        build_generator("sam2", sam2_params(tmp_path / "x.pt"), device="cpu")
    with pytest.raises(InputError, match="keyframe_masks.sam2.checkpoint is not set"):
        build_generator("sam2", {**sam2_params("x"), "checkpoint": ""}, device="cpu")
