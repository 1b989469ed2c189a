"""`python -m pipeline synth --seed N --out DIR` writes a synthetic scene in ScanNet layout."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import add_command

SPEC_KEYS = ("seed", "preset", "frames", "width", "height", "invalid_poses")


def run_synth(out_dir, spec: dict, overwrite: bool = True) -> Path:
    """Write the synthetic scene described by a spec {seed, preset, frames, width, height, invalid_poses}.

    Called by the CLI and by the Snakemake rule (whose spec is the merged `synth` config section).
    """
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown synthetic scene key(s) {sorted(unknown)}; allowed: {list(SPEC_KEYS)}")
    from pipeline.synth import write_synthetic_scene  # keeps `python -m pipeline --help` light

    return write_synthetic_scene(
        out_dir,
        seed=int(spec.get("seed", 0)),
        n_frames=spec.get("frames"),
        image_size=(int(spec.get("width", 320)), int(spec.get("height", 240))),
        preset=spec.get("preset", "default"),
        invalid_poses=int(spec.get("invalid_poses", 0)),
        overwrite=overwrite,
    )


def _run(args) -> Path:
    spec = {"seed": args.seed, "preset": args.preset, "frames": args.frames, "width": args.width,
            "height": args.height, "invalid_poses": args.invalid_poses}
    return run_synth(args.out, spec, overwrite=args.overwrite)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "synth", _run,
        help="generate a synthetic room with exact ground truth in ScanNet layout",
        description="Generate a procedural room from a seed, render RGB-D frames along a camera loop and "
        "write a ScanNet-layout scene folder (mesh, frames, poses, intrinsics, segs/aggregation ground "
        "truth, boxes.json, per-frame instance masks). The folder's name becomes the scene name.",
    )
    parser.add_argument("--seed", type=int, required=True, help="random seed of room, textures and trajectory")
    parser.add_argument("--out", required=True, help="scene folder to create")
    parser.add_argument("--preset", choices=["default", "tiny"], default="default",
                        help="default: ~50k-vertex room; tiny: ~12k vertices for fast tests")
    parser.add_argument("--frames", type=int, default=None, help="number of frames (preset's: 60 default, 12 tiny)")
    parser.add_argument("--width", type=int, default=320, help="image width in pixels")
    parser.add_argument("--height", type=int, default=240, help="image height in pixels")
    parser.add_argument("--invalid-poses", type=int, default=0, help="frames whose pose is written as -inf")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
