"""Off-screen pictures of labelled scenes (no display needed): ray-cast meshes, splatted point clouds.

Used by the report: a top-down view and a few camera views per scene, coloured by instance labels.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.synth.camera import look_at

BACKGROUND = (255, 255, 255)


def top_down_camera(vertices: np.ndarray, size: tuple[int, int] = (640, 480), fill: float = 0.92) -> tuple[np.ndarray, np.ndarray]:
    """(pose, intrinsic) of a camera far above the scene looking straight down, framing all vertices."""
    lo, hi = np.min(vertices, axis=0), np.max(vertices, axis=0)
    centre = 0.5 * (lo + hi)
    extent = np.maximum(hi - lo, 1e-3)
    height = 4.0 * max(extent[0], extent[1])  # far away: close to an orthographic plan view
    eye = np.array([centre[0], centre[1], hi[2] + height])
    pose = look_at(eye, [centre[0], centre[1], lo[2]], up=(0.0, 1.0, 0.0))
    width, h_px = size
    # Fit the scene's footprint at the top of the scene (the closest, hence largest, plane).
    focal = fill * min(width / extent[0], h_px / extent[1]) * height
    intrinsic = np.array([[focal, 0, (width - 1) / 2], [0, focal, (h_px - 1) / 2], [0, 0, 1]])
    return pose, intrinsic


def render_mesh(vertices, faces, colors, pose, intrinsic, size=(640, 480)) -> np.ndarray:
    """(h, w, 3) uint8 shaded render of a vertex-coloured mesh; background white."""
    from pipeline.synth.render import RoomRenderer

    mesh = SimpleNamespace(vertices=vertices, faces=faces, colors=colors, face_instance=np.zeros(len(faces), np.int32))
    renderer = RoomRenderer(mesh)
    frame = renderer.render(pose, intrinsic[:3, :3], size, max_depth=1e6)
    image = frame.color.copy()
    image[frame.depth_mm == 0] = BACKGROUND
    return image


def render_points(points, colors, pose, intrinsic, size=(640, 480), radius: int = 1) -> np.ndarray:
    """(h, w, 3) uint8 z-buffered splats of coloured points (for clouds without faces)."""
    width, height = size
    world_to_camera = np.linalg.inv(pose)
    camera = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    front = camera[:, 2] > 1e-6
    camera, colors = camera[front], np.asarray(colors)[front]
    u = np.rint(intrinsic[0, 0] * camera[:, 0] / camera[:, 2] + intrinsic[0, 2]).astype(np.int64)
    v = np.rint(intrinsic[1, 1] * camera[:, 1] / camera[:, 2] + intrinsic[1, 2]).astype(np.int64)
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    depth = np.full(height * width, np.inf)
    order = np.argsort(-camera[:, 2])  # far to near: nearer splats overwrite
    for du in range(-radius, radius + 1):
        for dv in range(-radius, radius + 1):
            uu, vv = u[order] + du, v[order] + dv
            ok = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height)
            flat = vv[ok] * width + uu[ok]
            z = camera[order][ok, 2]
            closer = z <= depth[flat]
            # later (nearer) writes win for duplicated pixels, as numpy assignment keeps the last
            depth[flat[closer]] = z[closer]
            image.reshape(-1, 3)[flat[closer]] = colors[order][ok][closer]
    return image


def render_labels(vertices, colors, pose, intrinsic, faces=None, size=(640, 480)) -> np.ndarray:
    if faces is not None and len(faces):
        return render_mesh(vertices, faces, colors, pose, intrinsic, size)
    return render_points(vertices, colors, pose, intrinsic, size)


def panel(images: list[np.ndarray], titles: list[str], columns: int = 3, pad: int = 8) -> Image.Image:
    """Images side by side in a grid, each with a title above it."""
    font = ImageFont.load_default()
    title_height = 18
    height = max(im.shape[0] for im in images)
    width = max(im.shape[1] for im in images)
    rows = (len(images) + columns - 1) // columns
    columns = min(columns, len(images))
    canvas = Image.new("RGB", (columns * (width + pad) + pad, rows * (height + title_height + pad) + pad), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, (image, title) in enumerate(zip(images, titles)):
        x = pad + (k % columns) * (width + pad)
        y = pad + (k // columns) * (height + title_height + pad)
        draw.text((x, y + 2), title, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(image), (x, y + title_height))
    return canvas
