"""Pinhole intrinsics and a smooth hand-held-like camera loop through a room.

Poses are camera-to-world 4x4 matrices in the ScanNet / OpenCV convention: camera x to the right
of the image, y down, z forward (the optical axis); pixel (u, v) has its centre at integer
coordinates, so a camera point (x, y, z) lands at u = fx x / z + cx, v = fy y / z + cy.
"""

from __future__ import annotations

import numpy as np


def default_intrinsic(width: int, height: int, focal_ratio: float = 0.9) -> np.ndarray:
    """4x4 pinhole intrinsic with fx = fy = focal_ratio * width (about a 58 degree horizontal view,
    like ScanNet's depth camera) and the principal point in the image centre."""
    focal = focal_ratio * width
    intrinsic = np.eye(4)
    intrinsic[0, 0] = intrinsic[1, 1] = focal
    intrinsic[0, 2] = (width - 1) / 2.0
    intrinsic[1, 2] = (height - 1) / 2.0
    return intrinsic


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world pose at ``eye`` looking at ``target``, image up roughly along world ``up``."""
    eye = np.asarray(eye, np.float64)
    forward = np.asarray(target, np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    norm = np.linalg.norm(right)
    if norm < 1e-6:
        raise ValueError("look_at: viewing direction is parallel to the up vector")
    right /= norm
    down = np.cross(forward, right)  # completes a right-handed frame: right x down = forward
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def camera_trajectory(room, n_frames: int, *, height: tuple[float, float] = (1.3, 1.6),
                      target_height: tuple[float, float] = (0.45, 0.95), loops: float = 1.0,
                      phase: float | None = None) -> np.ndarray:
    """(n_frames, 4, 4) poses of a smooth loop around the room centre, looking across the room.

    The eye circles an ellipse that keeps about 1.1 m from the walls (furniture against walls is at
    most 0.5 m deep) at a height that sways within ``height``; the camera looks at a point on the far
    side whose heading and height wander smoothly, so views see furniture, walls and floor. The
    start angle comes from the room's seed unless ``phase`` is given.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be positive (got {n_frames})")
    size_x, size_y, _ = room.size
    centre = np.array([size_x / 2, size_y / 2])
    radius = np.maximum(np.array([size_x, size_y]) / 2 - 1.1, 0.15)
    reach = np.array([size_x, size_y]) / 2 * 0.85
    if phase is None:
        phase = float(np.random.default_rng([room.seed, 2]).uniform(0, 2 * np.pi))
    angles = phase + 2 * np.pi * loops * np.arange(n_frames) / n_frames
    poses = np.empty((n_frames, 4, 4))
    mid_h, amp_h = np.mean(height), (height[1] - height[0]) / 2
    mid_t, amp_t = np.mean(target_height), (target_height[1] - target_height[0]) / 2
    for i, angle in enumerate(angles):
        eye_xy = centre + radius * np.array([np.cos(angle), np.sin(angle)])
        eye = np.array([*eye_xy, mid_h + amp_h * np.sin(2 * angle + 0.7)])
        heading = angle + np.pi + 0.6 * np.sin(3 * angle)  # look across the centre, sweeping sideways
        target_xy = centre + reach * np.array([np.cos(heading), np.sin(heading)])
        target = np.array([*target_xy, mid_t + amp_t * np.sin(5 * angle + 1.3)])
        poses[i] = look_at(eye, target)
    return poses


def pixel_rays(pose: np.ndarray, intrinsic: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 6) ray origins and directions for every pixel centre.

    Directions are scaled so that their camera-z component is 1: a hit at ray parameter t is then at
    z-depth t, which is what depth images store.
    """
    width, height = size
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    camera_dirs = np.stack([(u - intrinsic[0, 2]) / intrinsic[0, 0], (v - intrinsic[1, 2]) / intrinsic[1, 1],
                            np.ones_like(u)], axis=-1)
    directions = camera_dirs @ pose[:3, :3].T
    origins = np.broadcast_to(pose[:3, 3], directions.shape)
    return np.concatenate([origins, directions], axis=-1).astype(np.float32)


def project(points: np.ndarray, pose: np.ndarray, intrinsic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (n, 2) and z-depth (n,) of world points seen from a camera-to-world pose."""
    world_to_camera = np.linalg.inv(pose)
    camera = np.asarray(points, np.float64) @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    z = camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack([intrinsic[0, 0] * camera[:, 0] / z + intrinsic[0, 2],
                       intrinsic[1, 1] * camera[:, 1] / z + intrinsic[1, 2]], axis=1)
    return uv, z
