"""SAM automatic masks with a tiny randomly initialised model built from segment_anything's classes.

The model's weights are saved to a checkpoint file and loaded back through the stage's strict
loader, exactly as a released checkpoint would be.
"""

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.tracking.masks2d.base import FrameInput, build_generator, load_state_dict_strict
from pipeline.tracking.masks2d.sam import architecture_of, build_sam

TINY = {
    "image_size": 128, "patch_size": 16, "encoder_embed_dim": 32, "encoder_depth": 2, "encoder_num_heads": 2,
    "encoder_global_attn_indexes": [1], "window_size": 4, "prompt_embed_dim": 32, "mask_in_chans": 4,
    "decoder_mlp_dim": 64, "decoder_num_heads": 2, "iou_head_hidden_dim": 32,
}
LOOSE = {"points_per_side": 4, "points_per_batch": 16, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_sam(architecture_of("vit_b", TINY))
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(model.state_dict(), path)  # the released SAM files are bare state dicts
    return path, model.state_dict()


def sam_params(checkpoint):
    return {"model_type": "vit_b", "architecture": TINY, "checkpoint": str(checkpoint), **LOOSE}


def test_tiny_sam_loads_its_checkpoint_and_generates_masks(tiny_checkpoint):
    path, saved = tiny_checkpoint
    gen = build_generator("sam", sam_params(path), device="cpu")
    for key, value in gen.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    result = gen.generate(FrameInput(image))
    assert result.masks.shape[1:] == (48, 64) and result.masks.dtype == bool
    assert len(result) >= 1 and np.all(np.isfinite(result.scores))


def test_checkpoint_with_a_missing_key_is_refused_by_name(tiny_checkpoint, tmp_path):
    _, saved = tiny_checkpoint
    broken = dict(saved)
    del broken["mask_decoder.iou_token.weight"]
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(InputError, match="mask_decoder.iou_token.weight") as err:
        build_generator("sam", sam_params(path), device="cpu")
    assert str(path) in str(err.value) and "missing" in str(err.value)


def test_checkpoint_of_another_architecture_is_refused(tiny_checkpoint):
    path, _ = tiny_checkpoint
    other = {**TINY, "encoder_embed_dim": 48}
    with pytest.raises(InputError, match="wrong shapes"):
        build_generator("sam", {**sam_params(path), "architecture": other}, device="cpu")
    model = build_sam(architecture_of("vit_b", {**TINY, "encoder_depth": 1, "encoder_global_attn_indexes": [0]}))
    with pytest.raises(InputError, match="unexpected key"):
        load_state_dict_strict(model, path, "one-block SAM")


def test_missing_or_unset_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="checkpoint file is missing") as err:
        build_generator("sam", sam_params(tmp_path / "nope.pth"), device="cpu")
    assert "nope.pth" in str(err.value)
    with pytest.raises(InputError, match="keyframe_masks.sam.checkpoint is not set"):
        build_generator("sam", {**sam_params("x"), "checkpoint": None}, device="cpu")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="unreadable checkpoint"):
        build_generator("sam", sam_params(junk), device="cpu")


def test_architecture_overrides_are_checked():
    assert architecture_of("vit_h")["encoder_depth"] == 32
    with pytest.raises(ValueError, match="unknown SAM architecture"):
        architecture_of("vit_b", {"depth": 3})
    with pytest.raises(ValueError, match="model_type"):
        architecture_of("vit_x")
