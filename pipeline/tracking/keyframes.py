"""Keyframe selection: the frames on which automatic 2D masks are generated.

Two rules, both over valid frames only (frames with a non-finite pose are never keyframes):

* ``stride``: every k-th valid frame, starting with the first.
* ``motion``: the first valid frame, then every frame whose camera moved at least
  ``min_translation`` metres or turned at least ``min_rotation_deg`` degrees since the last
  keyframe. ``max_gap`` (0 = off) forces a keyframe after that many valid frames without one, so a
  camera that stands still still gets new masks now and then.
"""

from __future__ import annotations

import numpy as np
from pipeline.params import KEYFRAMES

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(KEYFRAMES)  # keyframe_masks.keyframes


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the relative rotation between two poses' rotation blocks, in degrees."""
    relative = a[:3, :3].T @ b[:3, :3]
    cosine = np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine)))


def select_keyframes(poses: np.ndarray, valid: np.ndarray, params: dict | None = None) -> np.ndarray:
    """Positions (into ``poses``) of the keyframes, increasing; empty when no frame is valid."""
    params = {**DEFAULT_PARAMS, **(params or {})}
    candidates = np.flatnonzero(np.asarray(valid, bool))
    if len(candidates) == 0:
        return np.zeros(0, np.int64)
    mode = params["mode"]
    if mode == "stride":
        stride = int(params["stride"])
        if stride < 1:
            raise ValueError(f"keyframe stride must be >= 1, got {stride}")
        return candidates[::stride].astype(np.int64)
    if mode != "motion":
        raise ValueError(f"unknown keyframe mode {mode!r} (use 'stride' or 'motion')")
    min_translation = float(params["min_translation"])
    min_rotation = float(params["min_rotation_deg"])
    max_gap = int(params["max_gap"])
    chosen = [int(candidates[0])]
    since = 0
    for index in candidates[1:]:
        since += 1
        last = poses[chosen[-1]]
        moved = np.linalg.norm(poses[index][:3, 3] - last[:3, 3])
        turned = rotation_angle_deg(last, poses[index])
        if moved >= min_translation or turned >= min_rotation or (max_gap and since >= max_gap):
            chosen.append(int(index))
            since = 0
    return np.asarray(chosen, np.int64)
