"""DINO ViT-S/8 backend: a tiny random ViT built and loaded through the real code path."""

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.unscene3d.features.dino import DinoFeatures, build_dino_vit, facet_features, load_dino_vit

# Same timm architecture (vit_small_patch8_224: patch 8, class token, no head), tiny widths.
TINY = {"embed_dim": 32, "depth": 3, "num_heads": 2, "img_size": 32}


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_dino_vit("vit_small_patch8_224", TINY)
    path = tmp_path / "dino_tiny.pth"
    torch.save(model.state_dict(), path)
    return path, model


def test_real_architecture_has_the_official_checkpoint_keys():
    with torch.device("meta"):  # shapes only, no weight initialisation
        state = build_dino_vit().state_dict()
    keys = set(state)
    official = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"}
    official |= {f"blocks.{b}.{name}" for b in range(12) for name in (
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
        "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")}
    assert keys == official
    assert tuple(state["pos_embed"].shape) == (1, 785, 384)  # 28 x 28 patches + class


def test_checkpoint_loads_strictly_and_reproduces_the_model(tiny_checkpoint):
    path, model = tiny_checkpoint
    loaded = load_dino_vit(path, "vit_small_patch8_224", TINY)
    image = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.allclose(model.eval().forward_features(image), loaded.forward_features(image))


def test_training_checkpoint_teacher_is_used(tmp_path, tiny_checkpoint):
    _, model = tiny_checkpoint
    teacher = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    teacher["head.mlp.0.weight"] = torch.zeros(4, 32)  # DINO projection head: not part of the ViT
    path = tmp_path / "checkpoint.pth"
    torch.save({"teacher": teacher, "epoch": 100}, path)
    loaded = load_dino_vit(path, "vit_small_patch8_224", TINY)
    assert torch.equal(loaded.state_dict()["cls_token"], model.state_dict()["cls_token"])


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="DINO checkpoint file is missing"):
        load_dino_vit(tmp_path / "nope.pth")
    with pytest.raises(InputError, match="features_2d.dino.checkpoint is not set"):
        load_dino_vit("")


def test_wrong_keys_are_listed(tmp_path, tiny_checkpoint):
    _, model = tiny_checkpoint
    state = model.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["blocks.2.mlp.fc2.bias"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as error:
        load_dino_vit(path, "vit_small_patch8_224", TINY)
    message = str(error.value)
    assert "missing keys 1 [blocks.2.mlp.fc2.bias]" in message and "unexpected keys 1 [extra.weight]" in message
    assert str(path) in message


def test_wrong_architecture_shapes_are_listed(tiny_checkpoint):
    path, _ = tiny_checkpoint
    with pytest.raises(InputError, match=r"wrong shapes .*cls_token \(1, 1, 32\) != \(1, 1, 48\)"):
        load_dino_vit(path, "vit_small_patch8_224", {**TINY, "embed_dim": 48})


def test_key_facet_is_the_key_projection_of_the_chosen_block(tiny_checkpoint):
    _, model = tiny_checkpoint
    model.eval()
    captured = {}
    model.blocks[1].attn.qkv.register_forward_hook(lambda m, i, o: captured.setdefault("qkv", o))
    image = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        model.forward_features(image)
        key = facet_features(model, image, layer=1, facet="key")
    assert key.shape == (1, 32, 4, 5)
    expected = captured["qkv"][0, 1:, 32:64].reshape(4, 5, 32).permute(2, 0, 1)  # drop class token
    assert torch.allclose(key[0], expected, atol=1e-5)


def test_extractor_with_stride_4_gives_a_denser_grid_placed_in_the_image(tiny_checkpoint):
    _, model = tiny_checkpoint
    backend = DinoFeatures(model, {"stride": 4, "short_side": 32, "layer": -1, "facet": "key"})
    images = np.random.default_rng(0).integers(0, 255, (2, 48, 64, 3), dtype=np.uint8)
    batch = backend(images)
    # Input 43x32 -> snapped to 40x32; patch 8 stride 4 -> (32-8)/4+1 = 7 rows, (40-8)/4+1 = 9 columns.
    assert batch.features.shape == (2, 32, 7, 9)
    assert backend.feature_dim == 32
    # Row 0 is centred on input row 4 (of 32), i.e. colour row 4 * 48/32 - 0.5 = 5.5.
    assert 5.5 * batch.scale[1] + batch.offset[1] == pytest.approx(0.0)
    assert torch.isfinite(batch.features).all()
