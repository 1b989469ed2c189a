"""`python -m pipeline keyframe_masks scene.h5 --out masks2d.h5`: automatic 2D masks on keyframes.

masks2d.h5 (stage "masks2d"), all masks at the working resolution (attrs ``width``, ``height``):
  keyframes/index (F,) i64      position of each keyframe in scene.h5's frames
  keyframes/frame_id (F,) i64   its ScanNet frame id
  keyframes/n_masks (F,) i32    masks kept; n_raw / n_small / n_contained / n_over_cap: what the
                                generator returned and why the others were dropped
  masks/bits (K, ceil(H*W/8)) u8  one row of packed bits per mask (numpy.packbits, row-major)
  masks/keyframe (K,) i32       which keyframe (row of keyframes/*) the mask belongs to
  masks/score (K,) f32, masks/area (K,) i32
  camera/intrinsic (3, 3)       the working camera
A scene without frames, or without a valid frame, gives the same layout with zero rows and the
attribute ``empty_reason`` saying why.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.artifacts import read_artifact, write_artifact
from pipeline.keyframes import DEFAULT_PARAMS as KEYFRAME_DEFAULTS
from pipeline.keyframes import select_keyframes
from pipeline.masks2d.base import FrameInput, MaskSet, build_generator, clean_masks, pack_masks, unpack_masks
from pipeline.tracking.frames import SceneFrames

log = logging.getLogger(__name__)

DEFAULT_PARAMS = {
    "generator": "felzenszwalb",  # sam | sam2 | felzenszwalb | oracle
    "device": "auto",  # torch device for learned generators ("auto": cuda if available)
    "image_scale": 1.0,  # working resolution = depth resolution x this
    "keyframes": dict(KEYFRAME_DEFAULTS),
    "min_mask_area": 100,  # pixels; smaller masks are dropped
    "tau_contain": 0.8,  # a mask this much inside another is redundant
    "containment_keep": "larger",  # which of a redundant pair survives: larger | smaller | score
    "max_masks_per_frame": 200,  # cap after filtering (0 = none); the preferred masks are kept
    "sam": {},
    "sam2": {},
    "felzenszwalb": {},
    "oracle": {},
}


def merge_params(defaults: dict, params: dict | None) -> dict:
    """``params`` over ``defaults``, merging one level of nested sections."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in (params or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


@dataclass
class KeyframeMasks:
    """masks2d.h5 loaded: per-keyframe access to the kept masks."""

    keyframe_index: np.ndarray
    keyframe_frame_id: np.ndarray
    bits: np.ndarray
    mask_keyframe: np.ndarray
    scores: np.ndarray
    width: int
    height: int
    intrinsic: np.ndarray
    attrs: dict

    def masks_of(self, position: int) -> MaskSet:
        rows = np.flatnonzero(self.mask_keyframe == position)
        return MaskSet(unpack_masks(self.bits[rows], self.height, self.width), self.scores[rows])


def read_masks2d(path) -> KeyframeMasks:
    art = read_artifact(path, "masks2d", required=["keyframes/index", "masks/bits", "masks/keyframe", "masks/score"])
    return KeyframeMasks(art["keyframes/index"], art["keyframes/frame_id"], art["masks/bits"], art["masks/keyframe"],
                         art["masks/score"], int(art.attrs["width"]), int(art.attrs["height"]),
                         art.get("camera/intrinsic", np.eye(3)), dict(art.attrs))


def _arrays(width: int, height: int, intrinsic: np.ndarray, keyframes: np.ndarray, frame_ids: np.ndarray,
            counts: dict, bits: list, mask_keyframe: list, scores: list, areas: list) -> dict:
    n_bytes = (width * height + 7) // 8
    return {
        "keyframes": {"index": keyframes.astype(np.int64), "frame_id": frame_ids.astype(np.int64),
                      **{k: np.asarray(v, np.int32) for k, v in counts.items()}},
        "masks": {
            "bits": np.concatenate(bits) if bits else np.zeros((0, n_bytes), np.uint8),
            "keyframe": np.concatenate(mask_keyframe).astype(np.int32) if mask_keyframe else np.zeros(0, np.int32),
            "score": np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32),
            "area": np.concatenate(areas).astype(np.int32) if areas else np.zeros(0, np.int32),
        },
        "camera": {"intrinsic": np.asarray(intrinsic, np.float64)},
    }


def _write_empty(out_path, params, inputs, reason: str, width=0, height=0, intrinsic=None) -> Path:
    log.warning("masks2d: %s; writing an explicitly empty artifact", reason)
    counts = {k: [] for k in ("n_raw", "n_small", "n_contained", "n_over_cap", "n_masks")}
    arrays = _arrays(width, height, np.eye(3) if intrinsic is None else intrinsic, np.zeros(0, np.int64),
                     np.zeros(0, np.int64), counts, [], [], [], [])
    attrs = {"width": width, "height": height, "generator": params["generator"], "n_keyframes": 0, "n_masks": 0,
             "n_empty_keyframes": 0, "empty_reason": reason}
    return write_artifact(out_path, "masks2d", arrays, params=params, inputs=inputs, attrs=attrs)


def run_keyframe_masks(scene_h5, out_path, params: dict | None = None, scene_dir=None) -> Path:
    params = merge_params(DEFAULT_PARAMS, params)
    inputs = [str(scene_h5)]
    scene = read_artifact(scene_h5, "scene", required=["vertices"])
    frames = SceneFrames.from_scene(scene, float(params["image_scale"]), scene_dir)
    if frames is None:
        return _write_empty(out_path, params, inputs, "scene has no frames (point cloud)")
    camera = frames.camera
    keyframes = select_keyframes(frames.poses, frames.valid, params["keyframes"])
    if len(keyframes) == 0:
        return _write_empty(out_path, params, inputs, "no keyframe: no frame has a valid pose",
                            camera.width, camera.height, camera.intrinsic)

    name = params["generator"]
    generator = build_generator(name, params.get(name, {}), device=params["device"])
    counts = {k: [] for k in ("n_raw", "n_small", "n_contained", "n_over_cap", "n_masks")}
    bits, mask_keyframe, scores, areas = [], [], [], []
    started = time.monotonic()
    for position, index in enumerate(keyframes):
        frame = FrameInput(frames.color(index), frames.depth(index), int(index), int(frames.frame_ids[index]),
                           ground_truth=lambda index=index: frames.instance(index))
        raw = generator.generate(frame)
        kept, report = clean_masks(raw, int(params["min_mask_area"]), float(params["tau_contain"]),
                                   params["containment_keep"], int(params["max_masks_per_frame"]))
        if report.n_over_cap:
            log.warning("frame %d: %d masks beyond max_masks_per_frame=%d dropped", frame.frame_id,
                        report.n_over_cap, params["max_masks_per_frame"])
        if len(kept) == 0:
            log.warning("frame %d: no mask left (%d from %s, %d too small, %d contained)", frame.frame_id,
                        report.n_raw, name, report.n_small, report.n_contained)
        for key in ("n_raw", "n_small", "n_contained", "n_over_cap"):
            counts[key].append(getattr(report, key))
        counts["n_masks"].append(len(kept))
        bits.append(pack_masks(kept.masks))
        mask_keyframe.append(np.full(len(kept), position, np.int32))
        scores.append(kept.scores)
        areas.append(kept.areas)
        if (position + 1) % 10 == 0:
            log.info("%d/%d keyframes (%.1f s)", position + 1, len(keyframes), time.monotonic() - started)

    n_masks = np.asarray(counts["n_masks"])
    attrs = {"width": camera.width, "height": camera.height, "generator": name, "n_keyframes": int(len(keyframes)),
             "n_masks": int(n_masks.sum()), "n_empty_keyframes": int((n_masks == 0).sum()), "empty_reason": ""}
    log.info("%d keyframes, %d masks (%d keyframes without any) in %.1f s", len(keyframes), n_masks.sum(),
             attrs["n_empty_keyframes"], time.monotonic() - started)
    arrays = _arrays(camera.width, camera.height, camera.intrinsic, keyframes, frames.frame_ids[keyframes], counts,
                     bits, mask_keyframe, scores, areas)
    return write_artifact(out_path, "masks2d", arrays, params=params, inputs=inputs, attrs=attrs)


def _handle(args) -> int:
    import json

    params = json.loads(args.params) if args.params else {}
    if args.generator:
        params["generator"] = args.generator
    run_keyframe_masks(args.scene_h5, args.out, params, scene_dir=args.scene_dir)
    print(f"wrote {args.out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "keyframe_masks",
        help="automatic 2D masks (SAM, SAM 2, Felzenszwalb or oracle) on keyframes -> masks2d.h5",
        description="Select keyframes, generate automatic 2D masks on each, drop redundant (contained) "
        "masks and write masks2d.h5.",
    )
    parser.add_argument("scene_h5", help="scene.h5 from the ingest stage")
    parser.add_argument("--out", required=True, help="output masks2d.h5")
    parser.add_argument("--generator", choices=["sam", "sam2", "felzenszwalb", "oracle"], help="mask generator")
    parser.add_argument("--params", help="stage parameters as JSON (the keyframe_masks config section)")
    parser.add_argument("--scene-dir", help="scene folder (default: the one recorded in scene.h5)")
    parser.set_defaults(func=_handle)
