"""``python -m pipeline features_2d SCENE_H5 SUPERPOINTS_H5 --out features_2d.h5``

Per-pixel 2D features of every ``frame_step``-th valid frame, back-projected onto the scene's
points (depth-tested), averaged per superpoint (visibility-weighted, L2-normalised).

Artifact ``features_2d`` (stage "features_2d"):
  superpoint_features (S, C) f32   unit-length mean feature (zero rows: superpoint never seen)
  superpoint_weight   (S,)   f32   number of (frame, point) observations behind each row
  point_visibility    (N,)   i32   number of frames in which each point passed the depth test
  frames_used         (F,)   i64   ids of the frames processed
attrs: empty (bool; True when there is no colour to describe: C = 0 and NCut uses 3D only),
empty_reason, source ("frames" or "point_colors"), backend, feature_dim, n_frames_used,
n_frames_seeing_points, n_points_visible, resumed_from_frame (-1 unless a killed run was continued).

A scene without frames (a coloured point cloud) takes its colour modality from the points' own
colours (``point_colors: true``, the default): the weight-free colour descriptor of
``pipeline.unscene3d.features.color.point_color_superpoint_features`` with the ``handcrafted`` settings
(embedded ``point_n_features`` wide), whatever the backend (DINO needs images); every point counts
as seen once. Without colours, or with
``point_colors: false``, the artifact is empty as before.

A killed run continues from ``features_2d.h5.resume/`` (see pipeline/io/resume.py): the running
per-point means are saved every ``checkpoint_every`` frames.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.params import Features2dParams
from pipeline.io.resume import ResumeFolder, fingerprint

log = logging.getLogger(__name__)

# torch and the backends are imported on use: the CLI imports every command module at start-up.


def make_backend(params: Features2dParams, device):
    from pipeline.unscene3d.features import color, dino

    if params.backend == "handcrafted":
        return color.ColorFeatures(dict(params.handcrafted), device)
    if params.backend == "dino":
        return dino.DinoFeatures.from_params(dict(params.dino), device)
    raise InputError(None, f"features_2d.backend must be 'handcrafted' or 'dino', got {params.backend!r}")


def read_frame_batches(scene_dir: Path, frame_ids: np.ndarray, poses: dict[int, np.ndarray], backend,
                       params: Features2dParams | dict, color_size: tuple[int, int],
                       depth_size: tuple[int, int]) -> Iterator:
    """Read, check and encode frames a batch at a time (only one batch is ever in memory)."""
    import torch

    from pipeline.io import scannet
    from pipeline.unscene3d.backproject import FrameBatch, batched

    params = Features2dParams.from_dict(params)  # benchmarks/backproject.py passes a partial dict
    for ids in batched(frame_ids, params.batch_size):
        colors, depths = [], []
        for frame_id in ids:
            color_path = scannet.frame_path(scene_dir, "color", int(frame_id))
            depth_path = scannet.frame_path(scene_dir, "depth", int(frame_id))
            color = scannet.read_color(color_path)
            depth = scannet.read_depth(depth_path, float(params.depth_scale))
            if (color.shape[1], color.shape[0]) != color_size:
                raise InputError(color_path, f"colour image is {color.shape[1]}x{color.shape[0]}, scene.h5 says {color_size[0]}x{color_size[1]}")
            if (depth.shape[1], depth.shape[0]) != depth_size:
                raise InputError(depth_path, f"depth image is {depth.shape[1]}x{depth.shape[0]}, scene.h5 says {depth_size[0]}x{depth_size[1]}")
            colors.append(color)
            depths.append(depth)
        features = backend(np.stack(colors))
        yield FrameBatch(
            frame_ids=np.asarray(ids),
            depth=torch.as_tensor(np.stack(depths)),
            pose=torch.as_tensor(np.stack([poses[int(i)] for i in ids])),
            features=features,
        )


def _empty_artifact(out_path, n_points: int, n_superpoints: int, params: Features2dParams, inputs: list,
                    reason: str) -> Path:
    log.info("features_2d: %s; writing an empty artifact (NCut will use 3D features only)", reason)
    arrays = {
        "superpoint_features": np.zeros((n_superpoints, 0), np.float32),
        "superpoint_weight": np.zeros(n_superpoints, np.float32),
        "point_visibility": np.zeros(n_points, np.int32),
        "frames_used": np.zeros(0, np.int64),
    }
    attrs = {"empty": True, "empty_reason": reason, "source": "", "backend": params.backend, "feature_dim": 0,
             "n_frames_used": 0, "n_frames_seeing_points": 0, "n_points_visible": 0, "resumed_from_frame": -1}
    return write_artifact(out_path, "features_2d", arrays, params=params.to_dict(), inputs=inputs, attrs=attrs)


def _point_color_artifact(out_path, vertices, colors, labels, n_superpoints: int, params: Features2dParams,
                          inputs: list) -> Path:
    """The colour modality of a scene without frames, from its points' colours."""
    from pipeline.unscene3d.features.color import point_color_superpoint_features

    features, weight = point_color_superpoint_features(vertices, colors, labels, n_superpoints, params.handcrafted)
    log.info("features_2d: no frames; %d-d colour features from the points' colours for %d superpoints",
             features.shape[1], n_superpoints)
    arrays = {
        "superpoint_features": features,
        "superpoint_weight": weight,
        "point_visibility": np.ones(len(vertices), np.int32),
        "frames_used": np.zeros(0, np.int64),
    }
    attrs = {"empty": False, "empty_reason": "", "source": "point_colors", "backend": "handcrafted",
             "feature_dim": int(features.shape[1]), "n_frames_used": 0, "n_frames_seeing_points": 0,
             "n_points_visible": int(len(vertices)), "resumed_from_frame": -1}
    return write_artifact(out_path, "features_2d", arrays, params=params.to_dict(), inputs=inputs, attrs=attrs)


def run_features_2d(scene_h5, superpoints_h5, out_path, params: Features2dParams | dict | None = None) -> Path:
    from pipeline.unscene3d.backproject import Cameras, select_frames
    from pipeline.devices import resolve_device
    from pipeline.unscene3d.features.aggregate import superpoint_features

    params = Features2dParams.from_dict(params)
    if params.backend not in ("handcrafted", "dino"):
        raise InputError(None, f"features_2d.backend must be 'handcrafted' or 'dino', got {params.backend!r}")
    if params.frame_step < 1 or float(params.depth_tolerance) <= 0:
        raise InputError(None, "features_2d.frame_step must be >= 1 and depth_tolerance > 0")
    scene = read_artifact(scene_h5, "scene", required=["vertices"])
    superpoints = read_artifact(superpoints_h5, "superpoints", required=["point_superpoint"])
    labels = superpoints["point_superpoint"]
    vertices = scene["vertices"]
    if len(labels) != len(vertices):
        raise InputError(superpoints_h5, f"has {len(labels)} point labels but {scene_h5} has {len(vertices)} points")
    n_superpoints = int(labels.max()) + 1 if len(labels) else 0
    inputs = [str(scene_h5), str(superpoints_h5)]
    if "frames/id" not in scene or len(scene["frames/id"]) == 0:
        colors = scene.get("colors")
        # ingest gives colourless clouds one grey: a constant colour carries nothing to cut on.
        has_colors = colors is not None and len(colors) == len(vertices) and len(vertices) and np.ptp(colors, axis=0).any()
        if params.point_colors and has_colors:
            return _point_color_artifact(out_path, vertices, colors, labels, n_superpoints, params, inputs)
        reason = "the scene has no frames" + (" and its points have no colours" if params.point_colors else
                                              " (point_colors is off)")
        return _empty_artifact(out_path, len(vertices), n_superpoints, params, inputs, reason)

    scene_dir = Path(scene.attrs["scene_dir"])
    ids, valid = scene["frames/id"], scene["frames/valid"].astype(bool)
    selected = select_frames(ids, valid, params.frame_step)
    if len(selected) == 0:
        raise InputError(scene_dir, f"has {len(ids)} frames but none with a valid pose: no 2D features can be computed")
    poses = {int(i): p for i, p in zip(ids, scene["frames/pose"])}
    color_size = tuple(int(x) for x in scene["frames/color_size"])
    depth_size = tuple(int(x) for x in scene["frames/depth_size"])
    cameras = Cameras(scene["intrinsics/color"], scene["intrinsics/depth"], color_size, depth_size)
    device = resolve_device(params.device)
    backend = make_backend(params, device)
    log.info("features_2d: %s backend on %s, %d of %d frames (every %d-th valid), %d points",
             params.backend, device, len(selected), len(ids), params.frame_step, len(vertices))
    resume = ResumeFolder(out_path, fingerprint(params.to_dict(), inputs + [str(scene_dir)]), chunked=False)
    result, resumed_from = _backproject_resumably(vertices, selected, cameras, backend, params, resume,
                                                  lambda frames: read_frame_batches(scene_dir, frames, poses, backend,
                                                                                    params, color_size, depth_size))
    if result.frames_with_visible_points == 0:
        raise InputError(
            scene_dir,
            f"none of the {len(selected)} sampled frames sees any scene point within depth_tolerance="
            f"{params.depth_tolerance} m: check depth_scale ({params.depth_scale}), poses and intrinsics",
        )
    features, weight = superpoint_features(result.features, labels, n_superpoints, weights=result.visibility)
    arrays = {
        "superpoint_features": features,
        "superpoint_weight": weight,
        "point_visibility": result.visibility,
        "frames_used": result.frames_used.astype(np.int64),
    }
    attrs = {
        "empty": False, "empty_reason": "", "source": "frames", "backend": params.backend,
        "feature_dim": int(backend.feature_dim),
        "n_frames_used": int(len(result.frames_used)), "n_frames_seeing_points": int(result.frames_with_visible_points),
        "n_points_visible": int((result.visibility > 0).sum()), "resumed_from_frame": resumed_from,
    }
    log.info("features_2d: %d/%d points and %d/%d superpoints seen", attrs["n_points_visible"], len(vertices),
             int((weight > 0).sum()), n_superpoints)
    path = write_artifact(out_path, "features_2d", arrays, params=params.to_dict(), inputs=inputs + [str(scene_dir)],
                          attrs=attrs)
    resume.clear()
    return path


def _backproject_resumably(vertices, selected: np.ndarray, cameras, backend, params: Features2dParams,
                           resume: ResumeFolder, read_batches) -> tuple:
    """Back-project the selected frames, saving the running means every ``checkpoint_every`` frames.

    Returns the result and the number of frames taken from a saved state (-1: none).
    """
    from pipeline.unscene3d.backproject import Backprojector

    projector = Backprojector(vertices, cameras, backend.feature_dim, float(params.depth_tolerance), params.device)
    done, resumed_from = 0, -1
    point = resume.load()
    if point is not None:
        try:
            projector.restore(point.state)
            if len(projector.frames_used) != point.next_step:
                raise ValueError(f"state lists {len(projector.frames_used)} frames, expected {point.next_step}")
            done = resumed_from = point.next_step
            log.info("features_2d: resuming after %d of %d frames", done, len(selected))
        except (KeyError, ValueError) as exc:
            log.warning("resume data in %s is unusable (%s); starting over", resume.path, exc)
            resume.clear()
            projector = Backprojector(vertices, cameras, backend.feature_dim, float(params.depth_tolerance),
                                      params.device)
    every, saved, started = params.checkpoint_every, done, time.monotonic()
    for number, batch in enumerate(read_batches(selected[done:]), start=1):
        projector.add(batch)
        done += len(batch.frame_ids)
        if every and done < len(selected) and done - saved >= every:
            resume.save(done, done, None, projector.state(), compress_state=False)  # floats compress poorly
            saved = done
        if number % 10 == 0:
            log.info("back-projected %d/%d frames (%.1f s)", done, len(selected), time.monotonic() - started)
    return projector.result(), resumed_from


def _run(args) -> Path:
    params = params_from_args(args)
    if args.checkpoint:
        params.setdefault("dino", {})["checkpoint"] = args.checkpoint
    return run_features_2d(args.scene_h5, args.superpoints_h5, args.out, params)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "features_2d", _run, help="back-project 2D features (DINO or handcrafted colour) onto superpoints",
        description="Encode every k-th valid frame, back-project the feature maps onto the scene's points "
        "(depth-tested), average them per superpoint and write features_2d.h5.",
        params=Features2dParams,
        flags={"backend": "feature backend", "frame_step": "every k-th valid frame",
               "depth_tolerance": "visibility test, metres", "device": "auto | cpu | cuda | cuda:N"},
    )
    parser.add_argument("scene_h5")
    parser.add_argument("superpoints_h5")
    parser.add_argument("--out", required=True, help="output features_2d.h5")
    parser.add_argument("--checkpoint", help="DINO checkpoint (dino_deitsmall8_pretrain.pth)")
