"""`python -m pipeline track scene.h5 masks2d.h5 --out tracks.h5`: granularity-consistent tracking.

tracks.h5 (stage "tracks"), label maps at the working resolution of masks2d.h5:
  frames/index (T,) i64         position in scene.h5's frames of each tracked frame (step)
  frames/frame_id (T,) i64, frames/is_keyframe (T,) bool
  labels (T, H, W) u16          object id per pixel, 0 = no object, 65535 = unknown (the tracker
                                never observed that surface: depth tracking between keyframes)
  objects/id, state, created_step, last_seen_step, n_seen, hits, confirmed   (O,) every object;
                                never-confirmed objects (confirm_hits > 1) are unknown in labels
  history/step, frame_id, object, from_state, to_state, reason   one row per state change
                                (states: -1 created, 0 Active, 1 Dormant, 2 Terminated)
  keyframes/step, n_masks, n_matched, n_created, n_redundant, n_refused   per keyframe
  camera/intrinsic (3, 3)
Attributes: tracker, width, height, unknown_label (65535), n_objects, n_refused (objects refused by max_objects),
resumed_from_step, empty_reason ("" unless there was nothing to track).

Label maps are written to the artifact as they are made (memory does not grow with the number
of frames). A killed run resumes from ``tracks.h5.resume/`` (see pipeline/io/resume.py), written
every ``checkpoint_every`` steps where the tracker can resume (sam2: at window starts).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from pipeline.io.artifacts import artifact_writer, read_artifact, write_artifact
from pipeline.commands.keyframe_masks import KeyframeMasks, open_masks2d
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.io.resume import ResumeFolder, fingerprint, json_array
from pipeline.tracking.base import StepFrames, build_tracker
from pipeline.tracking.driver import UNKNOWN_LABEL, TrackingDriver
from pipeline.params import TrackParams
from pipeline.tracking.frames import SceneFrames
from pipeline.tracking.states import CREATED, ObjectStateMachine, State

log = logging.getLogger(__name__)

STATE_NAMES = {CREATED: "created", int(State.ACTIVE): "active", int(State.DORMANT): "dormant",
               int(State.TERMINATED): "terminated"}


def new_machine(params: TrackParams) -> ObjectStateMachine:
    return ObjectStateMachine(params.tau_iou, params.tau_dorm, params.max_objects, params.confirm_hits)


def hide_unconfirmed(labels: np.ndarray, unconfirmed) -> None:
    """Objects never confirmed become unknown in every label map (they were one frame's guess).

    In place, one frame at a time (``labels`` may be an HDF5 dataset being written)."""
    if not len(unconfirmed):
        return
    lookup = np.arange(UNKNOWN_LABEL + 1, dtype=np.uint16)
    lookup[np.asarray(list(unconfirmed), np.int64)] = UNKNOWN_LABEL
    for step in range(len(labels)):
        frame = labels[step]
        hidden = lookup[frame]
        if not np.array_equal(hidden, frame):
            labels[step] = hidden


def tracked_frames(valid: np.ndarray, keyframe_index: np.ndarray, stride: int) -> np.ndarray:
    """Scene frame positions to track: every ``stride``-th valid frame plus all keyframes, in order."""
    if stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {stride}")
    chosen = np.flatnonzero(np.asarray(valid, bool))[::stride]
    return np.union1d(chosen, np.asarray(keyframe_index, np.int64)).astype(np.int64)


def _keyframe_log_arrays(rows: list[dict]) -> dict:
    keys = ("step", "n_masks", "n_matched", "n_created", "n_redundant", "n_refused")
    return {k: np.asarray([r[k] for r in rows], np.int64) for k in keys}


def _artifact_arrays(frames_index, frame_ids, is_key, machine, keyframe_rows, camera_intrinsic):
    """Every dataset but ``labels`` (streamed while tracking)."""
    history = machine.history_arrays()
    history["frame_id"] = frame_ids[history["step"]] if len(frame_ids) else np.zeros(0, np.int64)
    return {
        "frames": {"index": frames_index, "frame_id": frame_ids, "is_keyframe": is_key},
        "objects": machine.object_arrays(),
        "history": history,
        "keyframes": _keyframe_log_arrays(keyframe_rows),
        "camera": {"intrinsic": np.asarray(camera_intrinsic, np.float64)},
    }


def _write_empty(out_path, params: TrackParams, inputs, reason, width=0, height=0, intrinsic=None) -> Path:
    log.warning("tracks: %s; writing an explicitly empty artifact", reason)
    machine = new_machine(params)
    empty = np.zeros(0, np.int64)
    arrays = _artifact_arrays(empty, empty, np.zeros(0, bool), machine, [], np.eye(3) if intrinsic is None else intrinsic)
    arrays["labels"] = np.zeros((0, height, width), np.uint16)
    attrs = {"tracker": params.tracker, "width": width, "height": height, "unknown_label": UNKNOWN_LABEL,
             "n_objects": 0, "n_refused": 0,
             "resumed_from_step": -1, "empty_reason": reason, "state_names": STATE_NAMES}
    return write_artifact(out_path, "tracks", arrays, params=params.to_dict(), inputs=inputs, attrs=attrs)


def run_track(scene_h5, masks2d_h5, out_path, params: TrackParams | dict | None = None, scene_dir=None) -> Path:
    with open_masks2d(masks2d_h5) as masks:  # mask bits are read keyframe by keyframe
        return _track(scene_h5, masks2d_h5, masks, out_path, TrackParams.from_dict(params), scene_dir)


def _track(scene_h5, masks2d_h5, masks: KeyframeMasks, out_path, params: TrackParams, scene_dir) -> Path:
    inputs = [str(scene_h5), str(masks2d_h5)]
    scene = read_artifact(scene_h5, "scene", required=["vertices"])
    image_scale = float(json.loads(masks.attrs.get("params", "{}")).get("image_scale", 1.0))
    frames = SceneFrames.from_scene(scene, image_scale, scene_dir)
    if frames is None:
        return _write_empty(out_path, params, inputs, "scene has no frames (point cloud)")
    camera = frames.camera
    if (camera.width, camera.height) != (masks.width, masks.height):
        raise InputError(masks2d_h5, f"masks are {masks.width}x{masks.height} but the scene's working resolution "
                                     f"is {camera.width}x{camera.height}; rerun keyframe_masks")
    if len(masks.keyframe_index) == 0:
        return _write_empty(out_path, params, inputs, f"no keyframes ({masks.attrs.get('empty_reason') or 'none selected'})",
                            camera.width, camera.height, camera.intrinsic)

    indices = tracked_frames(frames.valid, masks.keyframe_index, params.frame_stride)
    steps = StepFrames(frames, indices)
    step_of = {int(index): step for step, index in enumerate(indices)}
    keyframe_masks = {step_of[int(index)]: (lambda position=position: masks.masks_of(position))
                      for position, index in enumerate(masks.keyframe_index)}
    frame_ids = frames.frame_ids[indices]

    resume = ResumeFolder(out_path, fingerprint(params.to_dict(), inputs))
    point = resume.load()
    machine = new_machine(params)
    tracker = build_tracker(params.tracker, steps, getattr(params, params.tracker), device=params.device)
    keyframe_rows: list[dict] = []
    start = 0
    if point is not None:
        machine = ObjectStateMachine.from_dict(point.json("machine"))
        keyframe_rows = point.json("keyframes")
        tracker.restore({k[len("tracker/"):]: v for k, v in point.state.items() if k.startswith("tracker/")})
        start = point.next_step
        log.info("resuming %s from step %d of %d", out_path, start, len(indices))
    driver = TrackingDriver(steps, keyframe_masks, tracker, machine, params)

    every = params.checkpoint_every
    with artifact_writer(out_path, "tracks", params=params.to_dict(), inputs=inputs) as out:
        labels = out.stream("labels", (len(indices), *camera.shape), np.uint16)
        if point is not None:
            for first, chunk in point.chunks():
                labels[first:first + len(chunk["labels"])] = chunk["labels"]
        pending: list[np.ndarray] = []  # label maps since the last resume save
        saved_until = start
        started = time.monotonic()
        try:
            for step in range(start, len(indices)):
                result = driver.step(step)
                labels[step] = result.labels
                if every:
                    pending.append(result.labels)
                if result.keyframe is not None:
                    k = result.keyframe
                    keyframe_rows.append({"step": step, "n_masks": k.n_masks, "n_matched": len(k.matched),
                                          "n_created": len(k.created), "n_redundant": k.n_redundant,
                                          "n_refused": k.n_refused})
                for change in result.changes:
                    log.debug("step %d frame %d: object %d %s -> %s (%s)", change.step, frame_ids[step],
                              change.object_id, STATE_NAMES[change.old], STATE_NAMES[change.new], change.reason)
                done = step + 1
                if every and done < len(indices) and done - saved_until >= every:
                    snapshot = tracker.snapshot()
                    if snapshot is not None:
                        state = {"machine": json_array(machine.to_dict()), "keyframes": json_array(keyframe_rows),
                                 **{f"tracker/{k}": v for k, v in snapshot.items()}}
                        resume.save(saved_until, done, {"labels": np.stack(pending)}, state)
                        saved_until, pending = done, []
                if done % 50 == 0:
                    log.info("tracked %d/%d frames, %d live objects (%.1f frames/s)", done, len(indices),
                             len(machine.live_ids), (done - start) / max(time.monotonic() - started, 1e-9))
        finally:
            tracker.close()

        if machine.n_refused:
            log.warning("%d new objects were refused because max_objects=%d live objects were reached",
                        machine.n_refused, params.max_objects)
        unconfirmed = machine.unconfirmed_ids
        if unconfirmed:
            log.info("%d objects were never confirmed by a second keyframe mask; their pixels are stored as unknown",
                     len(unconfirmed))
        hide_unconfirmed(labels, unconfirmed)
        is_key = np.isin(indices, masks.keyframe_index)
        out.write(_artifact_arrays(indices, frame_ids, is_key, machine, keyframe_rows, camera.intrinsic))
        out.set_attrs({"tracker": params.tracker, "width": camera.width, "height": camera.height,
                       "unknown_label": UNKNOWN_LABEL, "n_objects": len(machine.objects),
                       "n_refused": machine.n_refused, "resumed_from_step": start if point else -1,
                       "empty_reason": "", "state_names": STATE_NAMES})
        log.info("%d frames tracked, %d objects (%d live at the end), %d state changes", len(indices),
                 len(machine.objects), len(machine.live_ids), len(machine.history))
    resume.clear()
    return Path(out_path)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "track",
        lambda args: run_track(args.scene_h5, args.masks2d_h5, args.out, params_from_args(args),
                               scene_dir=args.scene_dir),
        help="track keyframe masks through all frames with stable ids (Active/Dormant/Terminated) -> tracks.h5",
        description="Propagate every object through the frames (SAM 2 or depth reprojection), match keyframe "
        "masks to tracked objects and write per-frame label maps and the object state history.",
        params=TrackParams, flags={"tracker": "propagation backend"},
    )
    parser.add_argument("scene_h5", help="scene.h5 from the ingest stage")
    parser.add_argument("masks2d_h5", help="masks2d.h5 from the keyframe_masks stage")
    parser.add_argument("--out", required=True, help="output tracks.h5")
    parser.add_argument("--scene-dir", help="scene folder (default: the one recorded in scene.h5)")
