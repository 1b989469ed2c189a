"""Seed-controlled synthetic indoor scenes with exact ground truth, written in ScanNet layout.

generate_room (geometry, colours, instances, segments) -> camera_trajectory (poses) ->
render_frames (colour, depth, instance maps) -> write_synthetic_scene (scene folder).
"""

from pipeline.synth.camera import camera_trajectory, default_intrinsic, look_at, project
from pipeline.synth.render import Frame, RoomRenderer, render_frames
from pipeline.synth.room import PRESETS, Part, Room, RoomParams, generate_room, room_params
from pipeline.synth.writer import write_synthetic_scene

__all__ = [
    "PRESETS", "Frame", "Part", "Room", "RoomParams", "RoomRenderer", "camera_trajectory", "default_intrinsic",
    "generate_room", "look_at", "project", "render_frames", "room_params", "write_synthetic_scene",
]
