"""`python -m pipeline lift scene.h5 superpoints.h5 tracks.h5 --masks2d masks2d.h5 --out lifted.h5`:
tracked masks -> 3D, and each keyframe's own (untracked) 2D masks on the points it sees.

lifted.h5 (stage "lifted"):
  point_instance (N,) i32         3D instance of each scene point, -1 = none
  instance_score (K,) f32         mean confidence of the instance's superpoint labels
  instance_object (K,) i32        the tracked object id the instance comes from
  superpoint_object (S,) i32, superpoint_confidence (S,) f32   one label (0 = none) per superpoint
  point_observations (N,) i32     how many used frames observed each point
  views/frame_index (V,) i64      scene frame of each per-view (single-frame) mask set
  views/mask_view, mask_object, mask_instance (M,) i32   per-view masks: view, object id, instance
  views/mask_offsets (M+1,) i64, views/mask_points (P,) i32   points of mask m:
                                  mask_points[mask_offsets[m]:mask_offsets[m+1]]
  raw_views/frame_index (V,) i64  with masks2d.h5: each keyframe's own 2D masks, untracked (the
  raw_views/mask_view (M,) i32,   curriculum's single-view stage); mask_row: the mask's row in
    mask_row, mask_score,         masks2d.h5 masks/*, mask_score its 2D score; offsets and points as
    mask_offsets, mask_points     in views/* (masks of one view may overlap)
Attributes: n_instances, n_views, n_raw_masks, empty_reason.

The raw masks live in lifted.h5 because the lift stage already projects frames onto the scene
with the depth test; the training stage reads one artifact per scene and never needs the frames.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.io.artifacts import append_rows, artifact_writer, open_artifact, read_artifact
from pipeline.errors import InputError
from pipeline.cli import add_command, params_from_args
from pipeline.tracking.lift import LiftResult, MaskView, View, lift_raw_views, lift_views
from pipeline.params import LiftParams
from pipeline.tracking.frames import Camera, SceneFrames

log = logging.getLogger(__name__)


def _arrays(result: LiftResult) -> dict:
    return {
        "point_instance": result.point_instance.astype(np.int32),
        "instance_score": result.instance_score.astype(np.float32),
        "instance_object": result.instance_object.astype(np.int32),
        "superpoint_object": result.superpoint_object.astype(np.int32),
        "superpoint_confidence": result.superpoint_confidence.astype(np.float32),
        "point_observations": result.point_observations.astype(np.int32),
        "views": result.views,
    }


def tracked_views(frames: SceneFrames, tracks, params: LiftParams):
    """The tracked frames chosen for voting, as :class:`View` (read lazily, one at a time).

    ``tracks["labels"]`` may be an on-disk dataset (see :func:`open_artifact`)."""
    index = np.asarray(tracks["frames/index"])
    is_key = np.asarray(tracks["frames/is_keyframe"])
    labels = tracks["labels"]
    stride = params.frame_stride
    if stride < 1:
        raise ValueError(f"lift frame_stride must be >= 1, got {stride}")
    per_view = params.per_view
    if per_view not in ("keyframes", "all", "none"):
        raise ValueError(f"lift per_view must be keyframes, all or none, got {per_view!r}")
    unknown = int(tracks.attrs.get("unknown_label", 65535))
    for step in range(len(index)):
        if step % stride and not is_key[step]:
            continue
        keep = per_view == "all" or (per_view == "keyframes" and bool(is_key[step]))
        step_labels = labels[step].astype(np.int64)
        step_labels[step_labels == unknown] = -1
        yield View(step_labels, frames.depth(int(index[step])), frames.pose(int(index[step])), int(index[step]), keep)


def _lift_tracks(scene, point_superpoint: np.ndarray, tracks, params: LiftParams, scene_dir,
                 points_sink=None) -> tuple[LiftResult, str]:
    """Vote the label maps of an open tracks artifact onto the scene; (result, empty reason).
    ``points_sink``: see :func:`lift_views`."""
    vertices = scene["vertices"]
    n_superpoints = int(point_superpoint.max()) + 1 if len(point_superpoint) else 0
    reason = tracks.attrs.get("empty_reason", "")
    if reason or len(tracks["frames/index"]) == 0:
        reason = reason or "no tracked frames"
        log.warning("lifted: %s; writing an explicitly empty artifact (no point has an instance)", reason)
        return LiftResult.empty(len(vertices), n_superpoints), reason
    width, height = int(tracks.attrs["width"]), int(tracks.attrs["height"])
    depth_width = int(scene["frames/depth_size"][0])
    frames = SceneFrames.from_scene(scene, width / depth_width, scene_dir)
    camera = Camera(np.asarray(tracks["camera/intrinsic"]), width, height)
    if frames.camera.shape != camera.shape:
        raise InputError(tracks.path, f"label maps are {width}x{height}, not a scaled copy of the depth frames")
    return lift_views(vertices, point_superpoint, tracked_views(frames, tracks, params), camera, params,
                      points_sink), reason


def keyframe_mask_views(frames: SceneFrames, masks) -> Iterator[MaskView]:
    """Each keyframe of an open masks2d artifact (``KeyframeMasks``) as a :class:`MaskView`, read
    one keyframe at a time."""
    for position, index in enumerate(masks.keyframe_index):
        rows = np.flatnonzero(masks.mask_keyframe == position)
        mask_set = masks.masks_of(position)
        yield MaskView(mask_set.masks, mask_set.scores, rows, frames.depth(int(index)), frames.pose(int(index)),
                       int(index))


def raw_view_arrays(scene, masks2d_h5, params: LiftParams, scene_dir=None, points_sink=None) -> dict:
    """raw_views/* of lifted.h5 from masks2d.h5 (empty when it has no keyframe); ``points_sink``:
    see :func:`lift_raw_views`."""
    from pipeline.commands.keyframe_masks import open_masks2d

    vertices = scene["vertices"]
    with open_masks2d(masks2d_h5) as masks:
        if masks.attrs.get("empty_reason") or len(masks.keyframe_index) == 0:
            return lift_raw_views(vertices, [], None, params)
        depth_width = int(scene["frames/depth_size"][0])
        frames = SceneFrames.from_scene(scene, masks.width / depth_width, scene_dir)
        camera = Camera(np.asarray(masks.intrinsic), masks.width, masks.height)
        if frames.camera.shape != camera.shape:
            raise InputError(masks2d_h5, f"masks are {masks.width}x{masks.height}, not a scaled copy of the depth frames")
        return lift_raw_views(vertices, keyframe_mask_views(frames, masks), camera, params, points_sink)


def run_lift(scene_h5, superpoints_h5, tracks_h5, out_path, params: LiftParams | dict | None = None, scene_dir=None,
             masks2d_h5=None) -> Path:
    """lifted.h5; with ``masks2d_h5`` also the raw single-view masks (raw_views/*)."""
    params = LiftParams.from_dict(params)
    inputs = [str(scene_h5), str(superpoints_h5), str(tracks_h5)] + ([str(masks2d_h5)] if masks2d_h5 else [])
    scene = read_artifact(scene_h5, "scene", required=["vertices"])
    superpoints = read_artifact(superpoints_h5, "superpoints", required=["point_superpoint"])
    vertices = scene["vertices"]
    point_superpoint = superpoints["point_superpoint"].astype(np.int64)
    if len(point_superpoint) != len(vertices):
        raise InputError(superpoints_h5, f"has {len(point_superpoint)} points, scene.h5 has {len(vertices)}")
    # The points of every per-view mask are appended to lifted.h5 as views are lifted, so memory does
    # not grow with the number of keyframes (only the masks' view, object and length are kept).
    with artifact_writer(out_path, "lifted", params=params.to_dict(), inputs=inputs) as out:
        groups = ["views"] + (["raw_views"] if masks2d_h5 is not None else [])
        points = {group: out.growing(f"{group}/mask_points", (), np.int32, rows_per_chunk=1 << 16) for group in groups}
        with open_artifact(tracks_h5, "tracks", required=["frames/index", "frames/is_keyframe", "labels"]) as tracks:
            result, reason = _lift_tracks(scene, point_superpoint, tracks, params, scene_dir,
                                          lambda rows: append_rows(points["views"], rows))
        arrays = _arrays(result)
        attrs = {"n_instances": int(len(result.instance_score)), "n_views": int(len(result.views["frame_index"])),
                 "empty_reason": reason}
        if masks2d_h5 is not None:
            arrays["raw_views"] = raw_view_arrays(scene, masks2d_h5, params, scene_dir,
                                                  lambda rows: append_rows(points["raw_views"], rows))
            attrs["n_raw_masks"] = int(len(arrays["raw_views"]["mask_view"]))
            log.info("%d raw single-view masks of >= %d points in %d keyframes", attrs["n_raw_masks"],
                     params.raw_min_points, len(arrays["raw_views"]["frame_index"]))
        for group in groups:  # an empty result was not streamed: its (empty) points are still in it
            append_rows(points[group], np.asarray(arrays[group].pop("mask_points", np.zeros(0, np.int32)), np.int32))
        log.info("%d instances cover %d of %d points; %d per-view masks in %d views", attrs["n_instances"],
                 int((result.point_instance >= 0).sum()), len(vertices), len(result.views["mask_view"]), attrs["n_views"])
        out.write(arrays)
        out.set_attrs(attrs)
    return Path(out_path)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "lift",
        lambda args: run_lift(args.scene_h5, args.superpoints_h5, args.tracks_h5, args.out, params_from_args(args),
                              scene_dir=args.scene_dir, masks2d_h5=args.masks2d),
        help="lift tracked 2D masks to 3D instances (one label per superpoint) -> lifted.h5",
        description="Project scene points into the tracked frames, vote object ids onto points and superpoints, "
        "and write 3D instances with scores plus the per-view (single-frame) masks; with --masks2d also each "
        "keyframe's own untracked 2D masks on the points it sees (raw_views/*).",
        params=LiftParams,
    )
    parser.add_argument("scene_h5", help="scene.h5 from the ingest stage")
    parser.add_argument("superpoints_h5", help="superpoints.h5 from the superpoints stage")
    parser.add_argument("tracks_h5", help="tracks.h5 from the track stage")
    parser.add_argument("--masks2d", help="masks2d.h5 from keyframe_masks: store the raw single-view masks")
    parser.add_argument("--out", required=True, help="output lifted.h5")
    parser.add_argument("--scene-dir", help="scene folder (default: the one recorded in scene.h5)")
