"""``python -m pipeline convert-csc RELEASED.pth --out csc_spconv.pth``

Turns the released Contrastive Scene Contexts weights (a MinkowskiEngine Res16UNet34C checkpoint,
e.g. ``partition8_4096_100k.pth``) into the spconv checkpoint that ``features_3d.csc.checkpoint``
takes. Every key and shape is checked; a file of another architecture, a missing key or a wrong
shape is an error that names the file and the keys. See pipeline/unscene3d/features/csc_convert.py.
"""

from __future__ import annotations

import argparse

from pipeline.cli import add_command


def _run(args: argparse.Namespace) -> None:
    from pipeline.unscene3d.features.csc_convert import convert_csc_checkpoint  # keeps `--help` light

    path, arch = convert_csc_checkpoint(args.checkpoint, args.out, voxel_size=args.voxel_size,
                                        normalize_output=not args.no_normalize)
    print(f"wrote {path} (Res16UNet planes {arch.planes}, layers {arch.layers}, "
          f"{arch.in_channels} -> {arch.out_channels} channels, voxel size {arch.voxel_size} m)")


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "convert-csc", _run,
        help="convert the released CSC (MinkowskiEngine) weights for the features_3d csc backend",
        description="Map a MinkowskiEngine Res16UNet state dict (the released Contrastive Scene Contexts "
        "checkpoint) onto this project's spconv Res16UNet and write it in the format "
        "features_3d.csc.checkpoint takes.",
    )
    parser.add_argument("checkpoint", help="released CSC checkpoint (.pth), e.g. partition8_4096_100k.pth")
    parser.add_argument("--out", required=True, help="output checkpoint (written atomically)")
    parser.add_argument("--voxel-size", type=float, default=0.02,
                        help="voxel edge in metres the network runs at (default 0.02, ScanNet's 2 cm; "
                        "CSC pre-trained at 0.025)")
    parser.add_argument("--no-normalize", action="store_true",
                        help="keep the final features as they are; by default they are scaled to unit length "
                        "as in CSC's pre-training model (use this for fine-tuned, non-contrastive heads)")
