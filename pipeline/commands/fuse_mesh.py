"""``python -m pipeline fuse_mesh SCENE_DIR --out MESH.ply``: TSDF-fuse a scene's RGB-D frames.

For scenes in ScanNet layout that have frames but no ``<scene>_vh_clean_2.ply``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pipeline.cli import add_command, params_from_args
from pipeline.params import FuseMeshParams
from pipeline.errors import InputError

log = logging.getLogger(__name__)


class ScanNetFrames:
    """Frames of a ScanNet-layout scene folder, read on demand (a ``pipeline.scene.fusion.FrameSource``)."""

    def __init__(self, scene_dir: str | os.PathLike):
        from pipeline.io import scannet

        self._scannet = scannet
        self.scene_dir = Path(scene_dir)
        if not self.scene_dir.is_dir():
            raise InputError(self.scene_dir, "scene folder does not exist")
        self.frame_ids = scannet.list_frame_ids(self.scene_dir)
        if len(self.frame_ids) == 0:
            raise InputError(self.scene_dir, "has no color/, depth/ and pose/ frames to fuse")
        self.depth_intrinsic = scannet.read_intrinsic(self.scene_dir, "depth")
        has_color_intrinsic = (self.scene_dir / "intrinsic" / "intrinsic_color.txt").is_file()
        self.color_intrinsic = scannet.read_intrinsic(self.scene_dir, "color") if has_color_intrinsic else None

    def __len__(self) -> int:
        return len(self.frame_ids)

    def depth(self, index: int) -> np.ndarray:
        return self._scannet.read_depth(self._scannet.frame_path(self.scene_dir, "depth", int(self.frame_ids[index])))

    def pose(self, index: int) -> np.ndarray:
        return self._scannet.read_pose(self.scene_dir, int(self.frame_ids[index]))

    def color(self, index: int) -> np.ndarray:
        return self._scannet.read_color(self._scannet.frame_path(self.scene_dir, "color", int(self.frame_ids[index])))


def run_fuse_mesh(scene_dir: str | os.PathLike, out_ply: str | os.PathLike, params: dict | None = None) -> dict:
    """Fuse the scene's frames and write the mesh as a ScanNet-style PLY; returns fusion statistics."""
    from pipeline.scene.fusion import fuse_tsdf
    from pipeline.io.ply import write_ply

    frames = ScanNetFrames(scene_dir)
    try:
        mesh = fuse_tsdf(frames, params)
    except ValueError as exc:
        raise InputError(scene_dir, str(exc)) from None
    if mesh.stats.get("frames_used", 0) == 0:
        raise InputError(scene_dir, f"no frame has a valid pose ({mesh.stats.get('frames_invalid_pose', 0)} invalid)")
    if len(mesh.faces) == 0:
        raise InputError(scene_dir, "TSDF fusion produced an empty mesh (no valid depth within max_depth?)")
    write_ply(out_ply, mesh.vertices, colors=mesh.colors, faces=mesh.faces)
    log.info("fused %s -> %s: %s", scene_dir, out_ply, mesh.stats)
    return mesh.stats


def _run(args) -> None:
    stats = run_fuse_mesh(args.scene_dir, args.out, params_from_args(args))
    print(
        f"{args.out}: {stats['vertices']} vertices, {stats['faces']} faces from {stats['frames_used']} frames "
        f"({stats['frames_invalid_pose']} skipped for invalid poses)"
    )


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "fuse_mesh", _run, help="TSDF-fuse a scene's RGB-D frames into a mesh PLY", params=FuseMeshParams,
        flags={"voxel": "voxel size in metres", "trunc": "TSDF truncation in metres", "every": "use every k-th frame",
               "max_depth": "ignore depth beyond (m)"},
    )
    parser.add_argument("scene_dir", help="scene folder in ScanNet layout (color/, depth/, pose/, intrinsic/)")
    parser.add_argument("--out", required=True, help="output mesh .ply")
