"""Query decoder in the style of MAFT (mask-attention-free transformer).

Each query has a *position* (3D coordinates, normalised to the scene) and a *content* vector.
A layer refines the content by cross-attention to superpoint features, where the attention
logits get a learned bias from the relative position of query and superpoint (no attention
masks), then self-attention between queries and a feed-forward block; finally the position moves
by a predicted offset. A ``position_refiner`` hook lets the BEEP3D teacher re-project the
positions after every layer (Eq. 6). After every layer the heads give mask logits (content ·
superpoint-feature similarity) and class logits (object classes + "no object").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


def fourier_encoding(positions: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """(..., 3) normalised positions -> (..., 6 * n_frequencies) sines and cosines."""
    freqs = (2.0 ** torch.arange(n_frequencies, dtype=positions.dtype, device=positions.device)) * math.pi
    angles = positions[..., :, None] * freqs  # (..., 3, F)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class PositionEncoder(nn.Module):
    def __init__(self, hidden: int, n_frequencies: int = 6):
        super().__init__()
        self.n_frequencies = n_frequencies
        self.mlp = _mlp([6 * n_frequencies, hidden, hidden])

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.mlp(fourier_encoding(positions, self.n_frequencies))


class RelativeCrossAttention(nn.Module):
    """Multi-head attention of queries to superpoints with a relative-position bias per head."""

    def __init__(self, hidden: int, heads: int, rel_hidden: int, rel_scale: float = 10.0):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.rel_scale = rel_scale  # offsets are a fraction of the scene: scale them to O(1)
        self.rel_bias = _mlp([3, rel_hidden, heads])

    def forward(self, query, query_pos_embed, query_coords, keys, key_pos_embed, key_coords, values):
        n_queries, n_keys, head_dim = query.shape[0], keys.shape[0], query.shape[1] // self.heads
        q = self.q(query + query_pos_embed).view(n_queries, self.heads, head_dim).transpose(0, 1)
        k = self.k(keys + key_pos_embed).view(n_keys, self.heads, head_dim).transpose(0, 1)
        v = self.v(values).view(n_keys, self.heads, head_dim).transpose(0, 1)
        logits = q @ k.transpose(1, 2) / math.sqrt(head_dim)  # (H, Q, S)
        relative = (key_coords[None, :, :] - query_coords[:, None, :]) * self.rel_scale  # (Q, S, 3)
        logits = logits + self.rel_bias(relative).permute(2, 0, 1)
        out = (logits.softmax(dim=-1) @ v).transpose(0, 1).reshape(n_queries, -1)
        return self.out(out)


class DecoderLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, rel_hidden: int, dropout: float = 0.0):
        super().__init__()
        self.cross = RelativeCrossAttention(hidden, heads, rel_hidden)
        self.cross_norm = nn.LayerNorm(hidden)
        self.self_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.self_norm = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, hidden))
        self.ffn_norm = nn.LayerNorm(hidden)
        self.offset = _mlp([hidden, hidden, 3])
        nn.init.zeros_(self.offset[-1].weight)  # positions start where they were put
        nn.init.zeros_(self.offset[-1].bias)

    def forward(self, content, coords, pos_embed, sp_features, sp_pos_embed, sp_coords):
        attended = self.cross(content, pos_embed, coords, sp_features, sp_pos_embed, sp_coords, sp_features)
        content = self.cross_norm(content + attended)
        q = (content + pos_embed)[None]
        attended, _ = self.self_attn(q, q, content[None], need_weights=False)
        content = self.self_norm(content + attended[0])
        content = self.ffn_norm(content + self.ffn(content))
        # Positions move by a bounded offset; gradients stop at the positions, as in MAFT.
        coords = (coords.detach() + 0.1 * torch.tanh(self.offset(content))).clamp(0.0, 1.0)
        return content, coords


@dataclass
class LayerOutput:
    content: torch.Tensor  # (Q, H) content queries after the layer
    coords: torch.Tensor  # (Q, 3) position queries (normalised) used by the layer's successor
    mask_logits: torch.Tensor  # (Q, S) over superpoints
    class_logits: torch.Tensor  # (Q, C + 1), last column "no object"


class QueryDecoder(nn.Module):
    def __init__(self, in_channels: int, hidden: int, heads: int, ffn: int, layers: int, n_classes: int,
                 rel_hidden: int = 32, dropout: float = 0.0):
        super().__init__()
        self.n_classes = n_classes
        self.input_proj = nn.Sequential(nn.Linear(in_channels, hidden), nn.LayerNorm(hidden), nn.ReLU())
        self.position = PositionEncoder(hidden)
        self.content_init = nn.Parameter(torch.zeros(hidden))
        self.content_from_position = nn.Linear(hidden, hidden)
        self.layers = nn.ModuleList([DecoderLayer(hidden, heads, ffn, rel_hidden, dropout) for _ in range(layers)])
        self.mask_feature = nn.Linear(hidden, hidden)
        self.mask_embed = _mlp([hidden, hidden, hidden])
        self.class_head = nn.Linear(hidden, n_classes + 1)
        self.out_norm = nn.LayerNorm(hidden)

    def heads(self, content: torch.Tensor, mask_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = self.out_norm(content)
        return self.mask_embed(normed) @ mask_features.T, self.class_head(normed)

    def forward(
        self,
        sp_features: torch.Tensor,
        sp_coords: torch.Tensor,
        query_coords: torch.Tensor,
        position_refiner: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[list[LayerOutput], torch.Tensor, torch.Tensor]:
        """Returns (per-layer outputs, mask features (S, H), superpoint features after projection)."""
        features = self.input_proj(sp_features)
        sp_pos_embed = self.position(sp_coords)
        # Position goes into the mask features: two look-alike objects (two grey chairs) differ
        # mainly in where they are, and a small backbone's receptive field cannot tell them apart.
        mask_features = self.mask_feature(features + sp_pos_embed)
        coords = query_coords
        if position_refiner is not None:
            coords = position_refiner(coords)
        pos_embed = self.position(coords)
        content = self.content_init[None] + self.content_from_position(pos_embed)
        outputs = []
        for layer in self.layers:
            content, coords = layer(content, coords, pos_embed, features, sp_pos_embed, sp_coords)
            if position_refiner is not None:
                coords = position_refiner(coords)
            mask_logits, class_logits = self.heads(content, mask_features)
            outputs.append(LayerOutput(content, coords, mask_logits, class_logits))
            pos_embed = self.position(coords)
        return outputs, mask_features, features
