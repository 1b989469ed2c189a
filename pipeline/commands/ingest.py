"""`python -m pipeline ingest SCENE_DIR --out scene.h5`"""

from __future__ import annotations

from pathlib import Path

from pipeline.artifacts import write_artifact
from pipeline.ingest import DEFAULT_PARAMS, ingest_scene


def run_ingest(scene_dir, out_path, params: dict | None = None, mesh_path=None) -> Path:
    params = {**DEFAULT_PARAMS, **(params or {})}
    scene = ingest_scene(scene_dir, params, mesh_path=mesh_path)
    return write_artifact(out_path, "scene", scene.arrays, params=params, inputs=scene.inputs, attrs=scene.attrs)


def _handle(args) -> int:
    params = {"verify_images": args.verify_images}
    run_ingest(args.scene_dir, args.out, params, mesh_path=args.mesh)
    print(f"wrote {args.out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="read and validate a ScanNet-layout scene folder into scene.h5",
        description="Read a scene folder (frames, poses, intrinsics, mesh or points.ply, optional "
        "ScanNet ground truth and boxes.json), validate it and write scene.h5.",
    )
    parser.add_argument("scene_dir", help="scene folder in ScanNet layout")
    parser.add_argument("--out", required=True, help="output scene.h5")
    parser.add_argument("--mesh", help="use this mesh instead of the scene's own (e.g. a fused mesh)")
    parser.add_argument(
        "--verify-images", choices=["all", "first"], default=DEFAULT_PARAMS["verify_images"],
        help="decode every colour and depth image, naming any truncated or corrupt one (all), or only the first frame's (first)",
    )
    parser.set_defaults(func=_handle)
