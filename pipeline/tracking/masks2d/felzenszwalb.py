"""Weight-free masks: Felzenszwalb-Huttenlocher graph segmentation of the colour image (scikit-image).

Every segment of at least ``min_area`` pixels becomes one mask; segments do not overlap. The score
is the same for all (the method has no notion of confidence), so containment and the tracker treat
them alike. Pixels without a depth reading can be left out (``require_depth``): they cannot be
tracked through depth or lifted to 3D anyway.
"""

from __future__ import annotations

import numpy as np

from pipeline.tracking.masks2d.base import FrameInput, MaskGenerator, MaskSet
from pipeline.params import FELZENSZWALB_MASKS

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(FELZENSZWALB_MASKS)  # keyframe_masks.felzenszwalb


def segment_labels(color: np.ndarray, scale: float, sigma: float, min_size: int) -> np.ndarray:
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(color, scale=scale, sigma=sigma, min_size=int(min_size)).astype(np.int32)


def masks_from_labels(labels: np.ndarray, min_area: int, ignore: np.ndarray | None = None) -> np.ndarray:
    """(K, H, W) bool, one mask per label with at least ``min_area`` pixels outside ``ignore``."""
    labels = np.asarray(labels)
    flat = labels.reshape(-1).astype(np.int64)
    counted = flat if ignore is None else flat[~ignore.reshape(-1)]
    counts = np.bincount(counted, minlength=int(flat.max()) + 1 if flat.size else 0)
    ids = np.flatnonzero(counts >= max(min_area, 1))
    masks = labels[None] == ids[:, None, None]
    if ignore is not None:
        masks &= ~ignore[None]
    return masks


class FelzenszwalbGenerator(MaskGenerator):
    name = "felzenszwalb"

    def __init__(self, params: dict | None = None, device: str = "cpu"):
        self.params = {**DEFAULT_PARAMS, **(params or {})}

    def generate(self, frame: FrameInput) -> MaskSet:
        p = self.params
        labels = segment_labels(frame.color, float(p["scale"]), float(p["sigma"]), int(p["min_size"]))
        ignore = (frame.depth <= 0) if (p["require_depth"] and frame.depth is not None) else None
        masks = masks_from_labels(labels, int(p["min_area"]), ignore)
        return MaskSet(masks, np.ones(len(masks), np.float32))
