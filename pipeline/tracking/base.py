"""The interface of propagation backends (trackers) and the frames they walk through.

A tracker carries object masks from one tracked frame to the next. The driver (driver.py) calls,
for every step (tracked frame) in order:

1. ``predict(step)``: the label map (H, W) int32 of the step, object id per pixel for the live
   objects the tracker can see, 0 = no object, -1 = unknown (the tracker has never observed the
   surface at this pixel, so it has no opinion; a depth-based tracker cannot know what a newly
   uncovered surface is);
2. ``observe(step, labels, prompted)``: the step's final label map after keyframe matching (-1 where
   still unknown), and the ids whose mask was (re)set from a keyframe mask (new objects and
   refreshed ones);
3. ``drop(ids)``: objects that were terminated; they must never appear again.

``snapshot()`` returns what is needed to resume after the last observed step (or None when the
tracker cannot resume from here), ``restore()`` takes it back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from pipeline.tracking.frames import Camera, SceneFrames


@dataclass
class StepFrames:
    """The frames visited by tracking, in order: step s is scene frame ``indices[s]``."""

    frames: SceneFrames
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def camera(self) -> Camera:
        return self.frames.camera

    def color(self, step: int) -> np.ndarray:
        return self.frames.color(int(self.indices[step]))

    def depth(self, step: int) -> np.ndarray:
        return self.frames.depth(int(self.indices[step]))

    def pose(self, step: int) -> np.ndarray:
        return self.frames.pose(int(self.indices[step]))

    def frame_id(self, step: int) -> int:
        return int(self.frames.frame_ids[self.indices[step]])


class Tracker(ABC):
    name: str = ""

    @abstractmethod
    def predict(self, step: int) -> np.ndarray:
        """(H, W) int32 object ids propagated to ``step`` (0 = none, -1 = unknown)."""

    @abstractmethod
    def observe(self, step: int, labels: np.ndarray, prompted: Sequence[int]) -> None:
        """The final label map of ``step``; ``prompted`` ids got a new mask from a keyframe."""

    @abstractmethod
    def drop(self, object_ids: Iterable[int]) -> None:
        """Forget terminated objects."""

    def snapshot(self) -> dict[str, np.ndarray] | None:
        return None

    def restore(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError(f"the {self.name} tracker cannot resume")

    def close(self) -> None:
        pass


TRACKERS = {
    "reprojection": "pipeline.tracking.reprojection:ReprojectionTracker",
    "sam2": "pipeline.tracking.sam2_tracker:Sam2Tracker",
}


def build_tracker(name: str, frames: StepFrames, params: dict | None = None, device: str = "auto") -> Tracker:
    import importlib

    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose one of {sorted(TRACKERS)}")
    module_name, class_name = TRACKERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(frames, dict(params or {}), device=device)
