"""Query decoder: position encoding, shapes, the position-refiner hook, translation behaviour."""

import math

import torch

from pipeline.learning.model.decoder import QueryDecoder, RelativeCrossAttention, fourier_encoding


def test_fourier_encoding_hand_values():
    enc = fourier_encoding(torch.tensor([[0.5, 0.0, 0.25]]), n_frequencies=2)
    # Per axis: sin(pi x), sin(2 pi x), cos(pi x), cos(2 pi x).
    expected = [1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 1.0, 1.0, math.sqrt(0.5), 1.0, math.sqrt(0.5), 0.0]
    torch.testing.assert_close(enc[0], torch.tensor(expected), atol=1e-6, rtol=0)


def _decoder(layers=3, n_classes=4):
    torch.manual_seed(0)
    return QueryDecoder(in_channels=8, hidden=16, heads=2, ffn=32, layers=layers, n_classes=n_classes, rel_hidden=8)


def test_decoder_outputs_every_layer():
    dec = _decoder()
    sp_features, sp_coords, query_coords = torch.randn(30, 8), torch.rand(30, 3), torch.rand(5, 3)
    layers, mask_features, _ = dec(sp_features, sp_coords, query_coords)
    assert len(layers) == 3 and mask_features.shape == (30, 16)
    for out in layers:
        assert out.mask_logits.shape == (5, 30) and out.class_logits.shape == (5, 5)
        assert out.content.shape == (5, 16) and ((out.coords >= 0) & (out.coords <= 1)).all()
        # Mask logits are content . superpoint-feature similarities.
        torch.testing.assert_close(out.mask_logits, dec.mask_embed(dec.out_norm(out.content)) @ mask_features.T)


def test_position_refiner_runs_before_the_first_and_after_every_layer():
    dec = _decoder(layers=3)
    seen = []

    def to_corner(coords):
        seen.append(coords.clone())
        return torch.full_like(coords, 0.25)

    layers, _, _ = dec(torch.randn(10, 8), torch.rand(10, 3), torch.rand(4, 3), to_corner)
    assert len(seen) == 4  # initial positions + one re-projection per layer
    for out in layers:
        assert torch.equal(out.coords, torch.full((4, 3), 0.25))


def test_relative_bias_depends_only_on_offsets():
    torch.manual_seed(0)
    attn = RelativeCrossAttention(hidden=8, heads=2, rel_hidden=4)
    for layer in (attn.q, attn.k):  # no content/position term: only the relative bias remains
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    query, keys = torch.randn(3, 8), torch.randn(6, 8)
    zero_q, zero_k = torch.zeros(3, 8), torch.zeros(6, 8)
    q_coords, k_coords = torch.rand(3, 3), torch.rand(6, 3)
    a = attn(query, zero_q, q_coords, keys, zero_k, k_coords, keys)
    b = attn(query, zero_q, q_coords + 0.3, keys, zero_k, k_coords + 0.3, keys)
    torch.testing.assert_close(a, b)
