"""`python -m pipeline ingest SCENE_DIR --out scene.h5`"""

from __future__ import annotations

from pathlib import Path

from pipeline.io.artifacts import write_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.io.ingest import ingest_scene
from pipeline.params import IngestParams


def run_ingest(scene_dir, out_path, params: IngestParams | dict | None = None, mesh_path=None) -> Path:
    params = IngestParams.from_dict(params)
    scene = ingest_scene(scene_dir, params, mesh_path=mesh_path)
    return write_artifact(out_path, "scene", scene.arrays, params=params.to_dict(), inputs=scene.inputs,
                          attrs=scene.attrs)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "ingest",
        lambda args: run_ingest(args.scene_dir, args.out, params_from_args(args), mesh_path=args.mesh),
        help="read and validate a ScanNet-layout scene folder into scene.h5",
        description="Read a scene folder (frames, poses, intrinsics, mesh or points.ply, optional "
        "ScanNet ground truth and boxes.json), validate it and write scene.h5.",
        params=IngestParams,
        flags={"verify_images": "decode every colour and depth image, naming any truncated or corrupt one (all), "
                                "or only the first frame's (first)"},
    )
    parser.add_argument("scene_dir", help="scene folder in ScanNet layout")
    parser.add_argument("--out", required=True, help="output scene.h5")
    parser.add_argument("--mesh", help="use this mesh instead of the scene's own (e.g. a fused mesh)")
