"""Pictures for the Snakemake report: per scene, the labels of every stage from above and from a few
of the scan's own camera poses, with ground truth and superpoints beside them."""

from __future__ import annotations

import numpy as np

from pipeline.outputs.export import label_colors
from pipeline.outputs.views import panel, render_labels, top_down_camera


def pick_view_frames(valid: np.ndarray, n_views: int) -> np.ndarray:
    """Indices of ``n_views`` valid frames spread evenly over the sequence."""
    candidates = np.flatnonzero(valid)
    if len(candidates) == 0 or n_views <= 0:
        return np.zeros(0, np.int64)
    picks = np.linspace(0, len(candidates) - 1, min(n_views, len(candidates))).round().astype(int)
    return candidates[np.unique(picks)]


def label_layers(scene, superpoints=None, labelled: dict | None = None) -> list[tuple[str, np.ndarray]]:
    """(title, per-vertex colours) for each layer to draw: input colour, ground truth, superpoints, stages."""
    layers = [("input colour", scene["colors"])]
    if "gt/instance" in scene:
        layers.append(("ground truth", label_colors(scene["gt/instance"])))
    if superpoints is not None:
        layers.append((f"superpoints ({int(superpoints['point_superpoint'].max()) + 1})", label_colors(superpoints["point_superpoint"])))
    for name, point_instance in (labelled or {}).items():
        n = len(np.unique(point_instance[point_instance >= 0]))
        layers.append((f"{name} ({n} instances)", label_colors(point_instance)))
    return layers


def overview_picture(scene, layers, size=(480, 360)):
    """Top-down renders of every layer in one grid."""
    vertices = scene["vertices"]
    faces = scene.get("faces")
    pose, intrinsic = top_down_camera(vertices, size)
    images = [render_labels(vertices, colors, pose, intrinsic, faces, size) for _, colors in layers]
    return panel(images, [f"{title} - top view" for title, _ in layers], columns=min(3, len(images)))


def camera_view_picture(scene, layers, n_views: int = 3, width: int = 320):
    """Each layer (rows) rendered from a few of the scan's camera poses (columns)."""
    if "frames/pose" not in scene:
        return None
    frames = pick_view_frames(scene["frames/valid"], n_views)
    if len(frames) == 0:
        return None
    color_w, color_h = (int(x) for x in scene["frames/color_size"])
    scale = width / color_w
    size = (width, int(round(color_h * scale)))
    intrinsic = np.array(scene["intrinsics/color"][:3, :3], float)
    intrinsic[:2] *= scale
    images, titles = [], []
    for title, colors in layers:
        for frame in frames:
            pose = scene["frames/pose"][frame]
            images.append(render_labels(scene["vertices"], colors, pose, intrinsic, scene.get("faces"), size))
            titles.append(f"{title} - frame {int(scene['frames/id'][frame])}")
    return panel(images, titles, columns=len(frames))


def tracking_overlay_picture(tracks, read_color, n_frames: int = 4, alpha: float = 0.55):
    """Tracked object ids blended over the colour images of a few frames (keyframes marked).

    ``read_color(frame_id)`` returns the (h, w, 3) colour image of a frame; it is resized to the
    label maps' working resolution. ``tracks["labels"]`` may be an on-disk dataset: only the
    shown frames are read.
    """
    from PIL import Image

    labels = tracks["labels"]
    if labels.shape[0] == 0:
        return None
    unknown = int(tracks.attrs.get("unknown_label", 65535))
    picks = np.unique(np.linspace(0, labels.shape[0] - 1, min(n_frames, labels.shape[0])).round().astype(int))
    n_ids = max((int(labels[i][labels[i] != unknown].max(initial=0)) for i in picks), default=0) + 1
    palette = label_colors(np.arange(n_ids))
    images, titles = [], []
    for index in picks:
        frame_labels = labels[index].astype(np.int64)
        height, width = frame_labels.shape
        color = np.asarray(Image.fromarray(read_color(int(tracks["frames/frame_id"][index]))).resize((width, height)))
        tracked = (frame_labels > 0) & (frame_labels != unknown)
        overlay = color.astype(np.float32)
        overlay[tracked] = (1 - alpha) * overlay[tracked] + alpha * palette[frame_labels[tracked]]
        images.append(overlay.round().astype(np.uint8))
        n_objects = len(np.unique(frame_labels[tracked]))
        key = " (keyframe)" if tracks["frames/is_keyframe"][index] else ""
        titles.append(f"frame {int(tracks['frames/frame_id'][index])}{key}: {n_objects} objects")
    return panel(images, titles, columns=len(images))
