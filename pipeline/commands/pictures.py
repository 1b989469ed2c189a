"""`python -m pipeline pictures SCENE_H5 --out DIR [--superpoints H5] [--labels NAME=H5 ...] [--tracks H5]`"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.io.atomic import atomic_path
from pipeline.io.artifacts import open_artifact, read_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.params import PicturesParams
from pipeline.outputs.report import camera_view_picture, label_layers, overview_picture, tracking_overlay_picture
from pipeline.io.scannet import frame_path, read_color

log = logging.getLogger(__name__)


def run_pictures(scene_h5, out_dir, superpoints_h5=None, labelled: dict | None = None, tracks_h5=None,
                 params: PicturesParams | dict | None = None) -> list[Path]:
    """Write overview.png (top view per layer), views.png (camera views) and tracking.png into ``out_dir``.

    Pictures that do not apply (no frames, no tracks) are written as a small note image, so the
    set of files is the same for every scene.
    """
    params = PicturesParams.from_dict(params)
    scene = read_artifact(scene_h5, "scene", required=["vertices", "colors"])
    superpoints = read_artifact(superpoints_h5, "superpoints") if superpoints_h5 else None
    point_labels = {name: read_artifact(path, Path(path).stem, required=["point_instance"])["point_instance"]
                    for name, path in (labelled or {}).items()}
    layers = label_layers(scene, superpoints, point_labels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures = {
        "overview.png": overview_picture(scene, layers),
        "views.png": camera_view_picture(scene, layers, n_views=params.views),
    }
    if tracks_h5:
        with open_artifact(tracks_h5, "tracks", required=["labels"]) as tracks:  # reads only the frames shown
            scene_dir = scene.attrs["scene_dir"]
            pictures["tracking.png"] = tracking_overlay_picture(
                tracks, lambda i: read_color(frame_path(scene_dir, "color", i)))
    written = []
    for name, image in pictures.items():
        path = out_dir / name
        if image is None:
            image = _note(f"{scene.attrs.get('scene_name', '')}: nothing to show (no frames)")
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        written.append(path)
        log.info("wrote %s (%dx%d)", path, *image.size)
    return written


def _note(text: str):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 40), (255, 255, 255))
    ImageDraw.Draw(image).text((8, 12), text, fill=(0, 0, 0))
    return image


def _run(args) -> list[Path]:
    labelled = dict(item.split("=", 1) for item in args.labels)
    return run_pictures(args.scene_h5, args.out, args.superpoints, labelled, args.tracks, params_from_args(args))


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "pictures", _run, help="render pictures of a scene's labels (no display needed)",
        description="Render top-down and camera views of a scene coloured by each labelling, and tracking overlays.",
        params=PicturesParams, flags={"views": "camera views per layer"},
    )
    parser.add_argument("scene_h5")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--superpoints", help="superpoints.h5")
    parser.add_argument("--labels", nargs="*", default=[], metavar="NAME=H5", help="labelled artifacts with point_instance")
    parser.add_argument("--tracks", help="tracks.h5 for tracking overlays")
