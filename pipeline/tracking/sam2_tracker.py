"""SAM 2 tracker: sam2's video predictor propagates every object through all tracked frames.

Keyframe masks are added with ``add_new_mask`` on their frame (new objects, and matched objects
as conditioning refreshes), and the predictor is stepped one frame at a time
(``propagate_in_video`` with ``max_frame_num_to_track=0``) so the driver can match the next
keyframe's masks against the propagated ones. Per-object logits are turned into one label map
by taking, at each pixel, the object with the highest positive logit.

Long videos are cut into windows of ``window`` tracked frames, one predictor session each, so
memory stays bounded (frames, features and per-object memories of one window only). A new window
re-prompts every live object with its last seen mask, on the frame where it was last seen: those
anchor frames are placed before the window's frames in the session's video, so SAM 2 keeps each
object's appearance in memory and can find a Dormant object again. At most
``max_anchor_frames`` distinct anchor frames (the most recent) are kept; objects whose anchor is
older are no longer propagated (they stay Dormant until terminated) and are logged.

Resuming is possible at window boundaries: the snapshot is the anchors (each object's last seen
step and mask).

sam2 1.1.0 runs the objects of a session one after another on each frame's shared image
features; the number of objects is bounded by the tracking stage's ``max_objects``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.io.checkpoints import require_checkpoint
from pipeline.devices import resolve_device
from pipeline.tracking.masks2d.base import pack_masks, unpack_masks
from pipeline.tracking.base import StepFrames, Tracker

log = logging.getLogger(__name__)

DEFAULT_PARAMS = {
    "model_config": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "checkpoint": None,
    "hydra_overrides": [],
    "window": 60,  # tracked frames per predictor session
    "max_anchor_frames": 8,  # past frames carried into a new window to re-prompt live objects
    "offload_video_to_cpu": True,  # keep decoded frames in host memory
    "offload_state_to_cpu": False,  # keep per-object memories in host memory (slower, less GPU memory)
    "jpeg_quality": 95,  # frames are handed to sam2 as a JPEG folder
}


def labels_from_logits(object_ids, logits: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """(H, W) int32: the object with the highest logit above ``threshold`` at each pixel, else 0."""
    logits = np.asarray(logits, np.float32).reshape(len(object_ids), *np.shape(logits)[-2:])
    if len(object_ids) == 0:
        return np.zeros(logits.shape[1:], np.int32)
    best = np.argmax(logits, axis=0)
    ids = np.asarray(object_ids, np.int32)[best]
    return np.where(np.max(logits, axis=0) > threshold, ids, 0).astype(np.int32)


class Sam2Tracker(Tracker):
    name = "sam2"

    def __init__(self, frames: StepFrames, params: dict | None = None, device: str = "auto"):
        from pipeline.tracking.masks2d.sam2_amg import build_sam2_model

        self.frames = frames
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        if int(self.params["window"]) < 1:
            raise ValueError(f"sam2 window must be >= 1 tracked frames, got {self.params['window']}")
        checkpoint = require_checkpoint(self.params["checkpoint"], "SAM 2", "track.sam2.checkpoint")
        self.device = resolve_device(device)
        self.predictor = build_sam2_model(self.params["model_config"], self.params["hydra_overrides"], self.device,
                                          video=True, checkpoint=checkpoint)
        # Keyframe masks on already tracked frames become conditioning frames (not mere corrections).
        self.predictor.add_all_frames_to_correct_as_cond = True
        self.last_seen: dict[int, tuple[int, np.ndarray]] = {}  # id -> (step, packed mask)
        self.session = None
        self.local: dict[int, int] = {}  # step -> frame index in the session's video
        self.session_objects: set[int] = set()
        self.window_start = -1
        self.last_observed = -1
        self._tmp: Path | None = None

    # -- sessions ------------------------------------------------------------------------------

    def _window_start(self, step: int) -> int:
        return step - step % int(self.params["window"])

    def _choose_anchors(self, start: int) -> dict[int, tuple[int, np.ndarray]]:
        steps = sorted({s for s, _ in self.last_seen.values() if s < start})
        kept = set(steps[-int(self.params["max_anchor_frames"]):]) if self.params["max_anchor_frames"] else set()
        lost = [i for i, (s, _) in self.last_seen.items() if s < start and s not in kept]
        if lost:
            log.warning("sam2 window at step %d: %d dormant objects last seen before the %d most recent anchor "
                        "frames are no longer propagated: %s", start, len(lost), len(kept), sorted(lost)[:20])
        return {i: v for i, v in self.last_seen.items() if v[0] in kept}

    def _open_window(self, start: int) -> None:
        import torch

        self.close()
        camera = self.frames.camera
        end = min(start + int(self.params["window"]), len(self.frames))
        anchors = self._choose_anchors(start)
        video_steps = sorted({s for s, _ in anchors.values()}) + list(range(start, end))
        self._tmp = Path(tempfile.mkdtemp(prefix="sam2_window_"))
        for position, step in enumerate(video_steps):
            Image.fromarray(self.frames.color(step)).save(self._tmp / f"{position}.jpg",
                                                          quality=int(self.params["jpeg_quality"]))
        self.local = {step: position for position, step in enumerate(video_steps)}
        with torch.inference_mode():
            self.session = self.predictor.init_state(
                str(self._tmp), offload_video_to_cpu=bool(self.params["offload_video_to_cpu"]),
                offload_state_to_cpu=bool(self.params["offload_state_to_cpu"]))
        shutil.rmtree(self._tmp, ignore_errors=True)  # init_state has decoded every frame
        self._tmp = None
        self.session_objects = set()
        for object_id, (step, bits) in sorted(anchors.items()):
            mask = unpack_masks(bits[None], camera.height, camera.width)[0]
            self.predictor.add_new_mask(self.session, self.local[step], object_id, mask)
            self.session_objects.add(object_id)
        self.window_start = start
        log.info("sam2 window %d-%d: %d anchor frames, %d objects re-prompted", start, end - 1,
                 len(video_steps) - (end - start), len(anchors))

    def close(self) -> None:
        if self.session is not None:
            self.predictor.reset_state(self.session)
            self.session = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- Tracker -------------------------------------------------------------------------------

    def predict(self, step: int) -> np.ndarray:
        camera = self.frames.camera
        if self.session is None or self._window_start(step) != self.window_start:
            self._open_window(self._window_start(step))
        if not self.session_objects:
            return np.zeros(camera.shape, np.int32)
        for _, object_ids, logits in self.predictor.propagate_in_video(
                self.session, start_frame_idx=self.local[step], max_frame_num_to_track=0):
            return labels_from_logits(object_ids, logits.float().cpu().numpy())
        return np.zeros(camera.shape, np.int32)

    def observe(self, step: int, labels: np.ndarray, prompted) -> None:
        ids = np.unique(labels[labels > 0])
        for object_id in ids:
            self.last_seen[int(object_id)] = (step, pack_masks((labels == object_id)[None])[0])
        for object_id in prompted:
            self.predictor.add_new_mask(self.session, self.local[step], int(object_id), labels == object_id)
            self.session_objects.add(int(object_id))
        self.last_observed = step

    def drop(self, object_ids) -> None:
        for object_id in object_ids:
            self.last_seen.pop(int(object_id), None)
            if self.session is not None and int(object_id) in self.session_objects:
                self.predictor.remove_object(self.session, int(object_id), need_output=False)
                self.session_objects.discard(int(object_id))

    def snapshot(self) -> dict[str, np.ndarray] | None:
        next_step = self.last_observed + 1
        if next_step != self._window_start(next_step):
            return None  # a session's memory cannot be saved; resume only where a window starts
        ids = sorted(self.last_seen)
        n_bytes = (self.frames.camera.width * self.frames.camera.height + 7) // 8
        return {
            "anchor_ids": np.asarray(ids, np.int64),
            "anchor_steps": np.asarray([self.last_seen[i][0] for i in ids], np.int64),
            "anchor_bits": np.stack([self.last_seen[i][1] for i in ids]) if ids else np.zeros((0, n_bytes), np.uint8),
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.close()
        self.last_seen = {int(i): (int(s), np.asarray(b, np.uint8)) for i, s, b in
                          zip(state["anchor_ids"], state["anchor_steps"], state["anchor_bits"])}
