"""The interface of automatic 2D mask generators, and what they share.

A generator turns one frame (colour at the working resolution, plus what the frame knows about
itself: its depth, its index, the scene folder) into a :class:`MaskSet`: binary masks, which may
overlap, each with a score. Generators are built from the stage's config by :func:`build_generator`;
learned ones load their weights through :func:`load_state_dict_strict` (pipeline/io/checkpoints.py
underneath), which refuses a checkpoint that does not fit the architecture and names the file and
the offending keys.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.io.checkpoints import load_checked_state_dict, read_torch_file
from pipeline.errors import InputError

log = logging.getLogger(__name__)


def _flat(masks: np.ndarray) -> np.ndarray:
    """(K, H, W) -> (K, H*W), also for K = 0."""
    return masks.reshape(masks.shape[0], masks.shape[1] * masks.shape[2])


@dataclass
class MaskSet:
    """Binary masks (K, H, W) of one frame with a score each (K,)."""

    masks: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        self.masks = np.asarray(self.masks, bool)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        if self.masks.ndim != 3 or len(self.scores) != len(self.masks):
            raise ValueError(f"need masks (K, H, W) and K scores, got {self.masks.shape} and {self.scores.shape}")

    @classmethod
    def empty(cls, height: int, width: int) -> "MaskSet":
        return cls(np.zeros((0, height, width), bool), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def areas(self) -> np.ndarray:
        return _flat(self.masks).sum(axis=1)

    def subset(self, keep) -> "MaskSet":
        keep = np.asarray(keep)
        return MaskSet(self.masks[keep], self.scores[keep])


@dataclass
class FrameInput:
    """One frame as a generator sees it (all at the working resolution)."""

    color: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray | None = None  # (H, W) metres, 0 = no reading
    frame_index: int = -1  # position in scene.h5's frames
    frame_id: int = -1  # ScanNet frame id
    ground_truth: Callable[[], np.ndarray] | None = None  # lazily read GT objectId map (oracle only)


class MaskGenerator(ABC):
    """Produces candidate object masks for one frame."""

    name: str = ""

    @abstractmethod
    def generate(self, frame: FrameInput) -> MaskSet:
        """Masks of ``frame`` (K may be 0); masks may overlap."""


# name -> "module:Class"; imported lazily so the weight-free path never imports torch.
GENERATORS = {
    "sam": "pipeline.tracking.masks2d.sam:SamGenerator",
    "sam2": "pipeline.tracking.masks2d.sam2_amg:Sam2Generator",
    "felzenszwalb": "pipeline.tracking.masks2d.felzenszwalb:FelzenszwalbGenerator",
    "oracle": "pipeline.tracking.masks2d.oracle:OracleGenerator",
}


def build_generator(name: str, params: dict | None = None, device: str = "auto") -> MaskGenerator:
    """The generator ``name`` configured by its own config sub-section ``params``."""
    import importlib

    if name not in GENERATORS:
        raise ValueError(f"unknown mask generator {name!r}; choose one of {sorted(GENERATORS)}")
    module_name, class_name = GENERATORS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(dict(params or {}), device=device)


# ----------------------------------------------------------------------------------------------
# Checkpoints


def _state_dict_from(loaded: Any, path: Path) -> dict:
    """The tensor mapping of a checkpoint: either the file itself or its 'model' / 'state_dict' entry."""
    import torch

    if isinstance(loaded, dict):
        for key in ("model", "state_dict"):
            inner = loaded.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return loaded
    raise InputError(path, "is not a model checkpoint (expected a state dict of tensors, or one under 'model')")


def load_state_dict_strict(model, path: str | os.PathLike, architecture: str = "model") -> None:
    """Load weights from ``path`` into ``model``; every key and shape must match exactly."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint file is missing")
    state = _state_dict_from(read_torch_file(path), path)
    load_checked_state_dict(model, state, path, f"checkpoint of the configured {architecture} architecture "
                                                "(check the model type / config)")


# ----------------------------------------------------------------------------------------------
# Compact storage of masks: one row of packed bits per mask.


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """(K, H, W) bool -> (K, ceil(H*W/8)) uint8."""
    return np.packbits(_flat(np.asarray(masks, bool)), axis=1)


def unpack_masks(bits: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_masks`."""
    bits = np.asarray(bits, np.uint8)
    flat = np.unpackbits(bits, axis=1, count=height * width) if len(bits) else np.zeros((0, height * width), np.uint8)
    return flat.reshape(len(bits), height, width).astype(bool)


# ----------------------------------------------------------------------------------------------
# Clean-up shared by all generators


@dataclass
class CleanupReport:
    n_raw: int  # masks the generator returned
    n_small: int  # dropped: below min_area pixels
    n_contained: int  # dropped: redundant by containment
    n_over_cap: int  # dropped: beyond max_masks


def clean_masks(masks: MaskSet, min_area: int, tau_contain: float, keep: str, max_masks: int) -> tuple[MaskSet, CleanupReport]:
    """Drop tiny masks, then redundant ones (containment), then all but ``max_masks`` (0 = no cap).

    The cap keeps the masks that containment prefers (e.g. the largest for keep="larger").
    """
    from pipeline.tracking.masks2d.containment import containment_filter, preference_order

    n_raw = len(masks)
    big = masks.areas >= max(min_area, 1)
    masks = masks.subset(np.flatnonzero(big))
    kept = containment_filter(masks.masks, masks.scores, tau_contain, keep)
    n_contained = int(len(masks) - kept.sum())
    masks = masks.subset(np.flatnonzero(kept))
    n_over_cap = 0
    if max_masks and len(masks) > max_masks:
        order = preference_order(masks.areas, masks.scores, keep)[:max_masks]
        n_over_cap = len(masks) - max_masks
        masks = masks.subset(np.sort(order))
    return masks, CleanupReport(n_raw, int((~big).sum()), n_contained, n_over_cap)
