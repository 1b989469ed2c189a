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

Mask bits are written to the artifact keyframe by keyframe. A killed run resumes after the last
saved keyframe from ``masks2d.h5.resume/`` (see pipeline/io/resume.py), written every
``checkpoint_every`` keyframes.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.io.artifacts import append_rows, artifact_writer, open_artifact, read_artifact, write_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.tracking.keyframes import select_keyframes
from pipeline.tracking.masks2d.base import FrameInput, MaskSet, build_generator, clean_masks, pack_masks, unpack_masks
from pipeline.params import KeyframeMasksParams
from pipeline.io.resume import ResumeFolder, fingerprint
from pipeline.tracking.frames import SceneFrames

log = logging.getLogger(__name__)

@dataclass
class KeyframeMasks:
    """masks2d.h5 loaded: per-keyframe access to the kept masks."""

    keyframe_index: np.ndarray
    keyframe_frame_id: np.ndarray
    bits: np.ndarray  # or an on-disk h5py dataset (open_masks2d)
    mask_keyframe: np.ndarray
    scores: np.ndarray
    width: int
    height: int
    intrinsic: np.ndarray
    attrs: dict

    def masks_of(self, position: int) -> MaskSet:
        rows = np.flatnonzero(self.mask_keyframe == position)
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # one keyframe's rows are contiguous: one read
            bits = self.bits[rows[0]:rows[-1] + 1]
        else:
            bits = np.asarray(self.bits)[rows] if len(rows) else np.zeros((0, (self.width * self.height + 7) // 8), np.uint8)
        return MaskSet(unpack_masks(bits, self.height, self.width), self.scores[rows])


_MASKS2D_REQUIRED = ["keyframes/index", "masks/bits", "masks/keyframe", "masks/score"]


def _keyframe_masks(art, bits) -> KeyframeMasks:
    intrinsic = np.asarray(art["camera/intrinsic"]) if "camera/intrinsic" in art else np.eye(3)
    return KeyframeMasks(np.asarray(art["keyframes/index"]), np.asarray(art["keyframes/frame_id"]), bits,
                         np.asarray(art["masks/keyframe"]), np.asarray(art["masks/score"]), int(art.attrs["width"]),
                         int(art.attrs["height"]), intrinsic, dict(art.attrs))


def read_masks2d(path) -> KeyframeMasks:
    art = read_artifact(path, "masks2d", required=_MASKS2D_REQUIRED)
    return _keyframe_masks(art, art["masks/bits"])


@contextmanager
def open_masks2d(path) -> Iterator[KeyframeMasks]:
    """masks2d.h5 with the mask bits left on disk and read one keyframe at a time."""
    with open_artifact(path, "masks2d", required=_MASKS2D_REQUIRED) as art:
        yield _keyframe_masks(art, art["masks/bits"])


COUNT_KEYS = ("n_raw", "n_small", "n_contained", "n_over_cap", "n_masks")  # per keyframe
MASK_KEYS = {"keyframe": np.int32, "score": np.float32, "area": np.int32}  # per mask (besides its bits)


def _arrays(intrinsic: np.ndarray, keyframes: np.ndarray, frame_ids: np.ndarray, counts: dict, per_mask: dict) -> dict:
    """Every dataset but ``masks/bits`` (streamed keyframe by keyframe)."""
    return {
        "keyframes": {"index": keyframes.astype(np.int64), "frame_id": frame_ids.astype(np.int64),
                      **{k: np.asarray(counts[k], np.int32) for k in COUNT_KEYS}},
        "masks": {k: np.concatenate(per_mask[k]).astype(dtype) if per_mask[k] else np.zeros(0, dtype)
                  for k, dtype in MASK_KEYS.items()},
        "camera": {"intrinsic": np.asarray(intrinsic, np.float64)},
    }


def _write_empty(out_path, params: KeyframeMasksParams, inputs, reason: str, width=0, height=0, intrinsic=None) -> Path:
    log.warning("masks2d: %s; writing an explicitly empty artifact", reason)
    arrays = _arrays(np.eye(3) if intrinsic is None else intrinsic, np.zeros(0, np.int64), np.zeros(0, np.int64),
                     {k: [] for k in COUNT_KEYS}, {k: [] for k in MASK_KEYS})
    arrays["masks"]["bits"] = np.zeros((0, (width * height + 7) // 8), np.uint8)
    attrs = {"width": width, "height": height, "generator": params.generator, "n_keyframes": 0, "n_masks": 0,
             "n_empty_keyframes": 0, "empty_reason": reason, "resumed_from_keyframe": -1}
    return write_artifact(out_path, "masks2d", arrays, params=params.to_dict(), inputs=inputs, attrs=attrs)


def run_keyframe_masks(scene_h5, out_path, params: KeyframeMasksParams | dict | None = None, scene_dir=None) -> Path:
    params = KeyframeMasksParams.from_dict(params)
    inputs = [str(scene_h5)]
    scene = read_artifact(scene_h5, "scene", required=["vertices"])
    frames = SceneFrames.from_scene(scene, float(params.image_scale), scene_dir)
    if frames is None:
        return _write_empty(out_path, params, inputs, "scene has no frames (point cloud)")
    camera = frames.camera
    keyframes = select_keyframes(frames.poses, frames.valid, params.keyframes)
    if len(keyframes) == 0:
        return _write_empty(out_path, params, inputs, "no keyframe: no frame has a valid pose",
                            camera.width, camera.height, camera.intrinsic)

    name = params.generator
    generator = build_generator(name, getattr(params, name), device=params.device)
    counts: dict[str, list[int]] = {k: [] for k in COUNT_KEYS}
    per_mask: dict[str, list[np.ndarray]] = {k: [] for k in MASK_KEYS}
    resume = ResumeFolder(out_path, fingerprint(params.to_dict(), inputs))
    point = resume.load()
    start = point.next_step if point else 0
    every = params.checkpoint_every
    n_bytes = (camera.width * camera.height + 7) // 8
    started = time.monotonic()
    with artifact_writer(out_path, "masks2d", params=params.to_dict(), inputs=inputs) as out:
        bits = out.growing("masks/bits", (n_bytes,), np.uint8)
        if point is not None:
            log.info("resuming %s at keyframe %d of %d", out_path, start, len(keyframes))
            for _, chunk in point.chunks():
                _extend(bits, counts, per_mask, chunk)
        pending: list[dict] = []  # keyframes since the last resume save
        saved_until = start
        for position in range(start, len(keyframes)):
            index = keyframes[position]
            frame = FrameInput(frames.color(index), frames.depth(index), int(index), int(frames.frame_ids[index]),
                               ground_truth=lambda index=index: frames.instance(index))
            kept, report = clean_masks(generator.generate(frame), params.min_mask_area, float(params.tau_contain),
                                       params.containment_keep, params.max_masks_per_frame)
            if report.n_over_cap:
                log.warning("frame %d: %d masks beyond max_masks_per_frame=%d dropped", frame.frame_id,
                            report.n_over_cap, params.max_masks_per_frame)
            if len(kept) == 0:
                log.warning("frame %d: no mask left (%d from %s, %d too small, %d contained)", frame.frame_id,
                            report.n_raw, name, report.n_small, report.n_contained)
            one = {"bits": pack_masks(kept.masks), "keyframe": np.full(len(kept), position, np.int32),
                   "score": kept.scores, "area": kept.areas, "n_masks": np.asarray([len(kept)]),
                   **{k: np.asarray([getattr(report, k)]) for k in COUNT_KEYS if k != "n_masks"}}
            _extend(bits, counts, per_mask, one)
            done = position + 1
            if every:
                pending.append(one)
                if done < len(keyframes) and done - saved_until >= every:
                    resume.save(saved_until, done, _concatenate(pending), {})
                    saved_until, pending = done, []
            if done % 10 == 0:
                log.info("%d/%d keyframes (%.1f s)", done, len(keyframes), time.monotonic() - started)

        n_masks = np.asarray(counts["n_masks"])
        attrs = {"width": camera.width, "height": camera.height, "generator": name,
                 "n_keyframes": int(len(keyframes)), "n_masks": int(n_masks.sum()),
                 "n_empty_keyframes": int((n_masks == 0).sum()), "empty_reason": "",
                 "resumed_from_keyframe": start if point else -1}
        log.info("%d keyframes, %d masks (%d keyframes without any) in %.1f s", len(keyframes), n_masks.sum(),
                 attrs["n_empty_keyframes"], time.monotonic() - started)
        out.write(_arrays(camera.intrinsic, keyframes, frames.frame_ids[keyframes], counts, per_mask))
        out.set_attrs(attrs)
    resume.clear()
    return Path(out_path)


def _extend(bits, counts: dict, per_mask: dict, chunk: dict) -> None:
    """Add the results of one or more keyframes (a chunk) to the artifact being written."""
    append_rows(bits, chunk["bits"])
    for key in COUNT_KEYS:
        counts[key].extend(int(v) for v in chunk[key])
    for key in MASK_KEYS:
        per_mask[key].append(np.asarray(chunk[key]))


def _concatenate(keyframes: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([np.asarray(k[key]) for k in keyframes]) for key in keyframes[0]}


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "keyframe_masks",
        lambda args: run_keyframe_masks(args.scene_h5, args.out, params_from_args(args), scene_dir=args.scene_dir),
        help="automatic 2D masks (SAM, SAM 2, Felzenszwalb or oracle) on keyframes -> masks2d.h5",
        description="Select keyframes, generate automatic 2D masks on each, drop redundant (contained) "
        "masks and write masks2d.h5.",
        params=KeyframeMasksParams, flags={"generator": "mask generator"},
    )
    parser.add_argument("scene_h5", help="scene.h5 from the ingest stage")
    parser.add_argument("--out", required=True, help="output masks2d.h5")
    parser.add_argument("--scene-dir", help="scene folder (default: the one recorded in scene.h5)")
