"""`python -m pipeline evaluate SCENE_H5 PRED_H5 [--out metrics.json]`: score masks against GT.

PRED_H5 is any mask-producing artifact (ncut, lifted, boxes, pseudo_labels, ...) holding
``point_instance`` (N,) int (-1 = none), optionally ``instance_score`` (K,) indexed by instance id
(default score 1) and ``point_box`` (N,) int (box index per point, -1 background) for the
overlap-region accuracy of box supervision.

Which GT instances count follows ``--gt-classes`` (auto | scannet18 | all_objects, see
``pipeline.outputs.evaluate``); ``auto`` reads the NYU40 ids ingest stored in ``gt/instance_nyu40``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pipeline.io.atomic import write_text
from pipeline.io.artifacts import FORMAT_VERSIONS, read_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.errors import ArtifactError
from pipeline.outputs.evaluate import (
    SCANNET_IOU_THRESHOLDS,
    gt_box_per_point,
    instance_ap_from_labels,
    overlap_assignment_accuracy,
    overlap_region_mask,
    resolve_gt_classes,
)
from pipeline.params import EvaluateParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    stage: str
    point_instance: np.ndarray  # (N,) int
    instance_score: np.ndarray | None  # (K,) float, indexed by instance id
    point_box: np.ndarray | None  # (N,) int
    boxes_source: str = ""  # "ground_truth (oracle)" when the labels were made from oracle boxes


def _read_integer_points(handle: h5py.File, path: Path, name: str, n_points: int) -> np.ndarray:
    values = handle[name][()]
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise ArtifactError(path, f"dataset {name!r} must be a 1-D integer array, got {values.dtype} {values.shape}")
    if len(values) != n_points:
        raise ArtifactError(path, f"dataset {name!r} has {len(values)} points, the scene has {n_points}")
    return values.astype(np.int64)


def read_predictions(path: str | os.PathLike, n_points: int) -> Predictions:
    """Read the mask datasets of any pipeline artifact, whatever its stage."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(path, "missing prediction artifact")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(path, f"not a readable HDF5 file ({exc})") from None
    with handle:
        stage = handle.attrs.get("stage")
        if stage is None:
            raise ArtifactError(path, "has no 'stage' attribute; not a pipeline artifact")
        stage = stage.decode() if isinstance(stage, bytes) else str(stage)
        if stage in FORMAT_VERSIONS and int(handle.attrs.get("format_version", -1)) != FORMAT_VERSIONS[stage]:
            raise ArtifactError(
                path, f"has {stage} format version {handle.attrs.get('format_version')}, this package reads "
                f"version {FORMAT_VERSIONS[stage]}; rerun the '{stage}' stage"
            )
        if "point_instance" not in handle:
            raise ArtifactError(path, f"{stage} artifact has no dataset 'point_instance' (has: {sorted(handle)})")
        point_instance = _read_integer_points(handle, path, "point_instance", n_points)
        instance_score = None
        if "instance_score" in handle:
            instance_score = np.asarray(handle["instance_score"][()], np.float64).ravel()
            largest_id = int(point_instance.max(initial=-1))
            if largest_id >= len(instance_score):
                raise ArtifactError(
                    path,
                    f"'instance_score' has {len(instance_score)} entries but 'point_instance' uses id {largest_id}",
                )
            if not np.all(np.isfinite(instance_score[point_instance[point_instance >= 0]])):
                raise ArtifactError(path, "'instance_score' has non-finite scores for used ids")
        point_box = _read_integer_points(handle, path, "point_box", n_points) if "point_box" in handle else None
        boxes_source = handle.attrs.get("boxes_source", "")
        boxes_source = boxes_source.decode() if isinstance(boxes_source, bytes) else str(boxes_source)
    return Predictions(stage, point_instance, instance_score, point_box, boxes_source)


def _overlap_metrics(scene, predictions: Predictions, scene_path: Path) -> dict | None:
    if predictions.point_box is None:
        return None
    if not all(name in scene for name in ("boxes/min", "boxes/max", "boxes/instance")):
        log.warning("%s: predictions have 'point_box' but the scene has no boxes; overlap accuracy skipped", scene_path)
        return None
    overlap = overlap_region_mask(scene["vertices"], scene["boxes/min"], scene["boxes/max"])
    gt_box = gt_box_per_point(scene["gt/instance"], scene["boxes/instance"])
    return overlap_assignment_accuracy(predictions.point_box, gt_box, overlap).to_dict()


def _resolve_gt_classes(gt_classes: str, gt_nyu40: np.ndarray | None, scene_path: Path) -> str:
    """Resolve ``auto`` and say which convention scores the scene (it changes n_gt and AP)."""
    resolved = resolve_gt_classes(gt_classes, gt_nyu40)
    known = 0 if gt_nyu40 is None else int(np.count_nonzero(gt_nyu40 >= 0))
    if resolved == "scannet18" and gt_nyu40 is None:
        raise ArtifactError(
            scene_path, "gt_classes 'scannet18' needs NYU40 ids ('gt/instance_nyu40'), which this scene.h5 "
            "lacks; re-ingest the scene, or use gt_classes all_objects"
        )
    if resolved == "scannet18" and known == 0:
        log.warning("%s: gt_classes scannet18 but no GT instance has an NYU40 id: nothing is evaluated", scene_path)
    log.info(
        "%s: gt_classes %s%s (%d of %d GT instances have NYU40 ids)", scene_path, resolved,
        f" (from {gt_classes})" if gt_classes != resolved else "", known, 0 if gt_nyu40 is None else len(gt_nyu40),
    )
    return resolved


def _write_json_atomically(data: dict, out_path: Path) -> None:
    write_text(out_path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _scene_with_ground_truth(scene_path: Path):
    scene = read_artifact(scene_path, "scene", required=["vertices"])
    if "gt/instance" not in scene or "gt/instance_label" not in scene:
        raise ArtifactError(
            scene_path, "has no ground truth ('gt/instance', 'gt/instance_label'); nothing to evaluate against"
        )
    return scene


def score_predictions(
    scene_path: str | os.PathLike,
    predictions: Predictions,
    params: EvaluateParams | dict | None = None,
    **overrides,
) -> dict:
    """Metrics (JSON-ready dict) of in-memory predictions against SCENE_H5's ground truth.

    ``overrides``: single evaluate parameters by keyword (``gt_classes="all_objects"``), on top of ``params``.
    """
    params = EvaluateParams.from_dict(params)
    if overrides:  # benchmarks and tests pass a parameter or two by name
        params = params.replace(**overrides)
    min_region_size, ignore_labels, gt_classes = params.min_region_size, params.ignore_labels, params.gt_classes
    scene_path = Path(scene_path)
    scene = _scene_with_ground_truth(scene_path)
    gt_instance = np.asarray(scene["gt/instance"]).astype(np.int64)
    if len(predictions.point_instance) != len(gt_instance):
        raise ArtifactError(scene_path, f"has {len(gt_instance)} points, the {predictions.stage} labels "
                                        f"{len(predictions.point_instance)}")
    # Scenes ingested before NYU40 ids were stored have none: auto then scores all objects.
    gt_nyu40 = np.asarray(scene["gt/instance_nyu40"]) if "gt/instance_nyu40" in scene else None
    resolved = _resolve_gt_classes(gt_classes, gt_nyu40, scene_path)
    try:
        result = instance_ap_from_labels(
            gt_instance, scene["gt/instance_label"], predictions.point_instance, predictions.instance_score,
            ignore_labels=ignore_labels, min_region_size=min_region_size, gt_nyu40=gt_nyu40, gt_classes=resolved,
        )
    except ValueError as exc:  # inconsistent GT inside scene.h5
        raise ArtifactError(scene_path, str(exc)) from None
    return {
        "scene": scene.attrs.get("scene_name"),
        "scene_h5": str(scene_path),
        "pred_stage": predictions.stage,
        "gt_classes": resolved,  # the convention that scored it
        "gt_classes_requested": gt_classes,
        "boxes_source": predictions.boxes_source,
        "params": {
            "min_region_size": min_region_size,
            "ignore_labels": list(ignore_labels),
            "iou_thresholds": list(SCANNET_IOU_THRESHOLDS),
            "gt_classes": gt_classes,
        },
        **result.to_dict(),
        "overlap": _overlap_metrics(scene, predictions, scene_path),
    }


def run_evaluate(
    scene_path: str | os.PathLike,
    pred_path: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    params: EvaluateParams | dict | None = None,
    **overrides,
) -> dict:
    """Metrics of PRED_H5's masks against SCENE_H5's ground truth (parameters as ``score_predictions``);
    optionally written as JSON."""
    scene = _scene_with_ground_truth(Path(scene_path))
    predictions = read_predictions(pred_path, len(scene["vertices"]))
    metrics = score_predictions(scene_path, predictions, params, **overrides)
    metrics["pred_h5"] = str(pred_path)
    if out_path is not None:
        _write_json_atomically(metrics, Path(out_path))
    return metrics


def _format(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def _run(args) -> str | None:
    metrics = run_evaluate(args.scene_h5, args.pred_h5, args.out, params_from_args(args))
    print(
        f"{metrics['scene']} ({metrics['pred_stage']}): AP {_format(metrics['ap'])}  AP50 {_format(metrics['ap50'])}  "
        f"AP25 {_format(metrics['ap25'])}  ({metrics['n_gt']} GT, {metrics['n_pred']} predictions; "
        f"gt classes {metrics['gt_classes']})"
    )
    if metrics["overlap"] is not None:
        overlap = metrics["overlap"]
        print(
            f"overlap regions: point accuracy {_format(overlap['point_accuracy'])}  mean per-box accuracy "
            f"{_format(overlap['mean_instance_accuracy'])}  "
            f"({overlap['n_points']} points, {overlap['n_instances']} boxes)"
        )
    return args.out


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "evaluate", _run,
        help="class-agnostic instance AP (ScanNet rules) of an artifact's masks against scene.h5 ground truth",
        description="Score the per-point instances ('point_instance', optional 'instance_score') of any "
        "mask-producing artifact against the ground truth in scene.h5: AP (IoU 0.50:0.90, as the ScanNet "
        "benchmark script), AP50, AP25; and, when the artifact has 'point_box' and the scene has boxes, "
        "the accuracy on points inside two or more boxes.",
        params=EvaluateParams,
        flags={"min_region_size": "GT instances (and predictions) with fewer points are ignored (the benchmark's)",
               "ignore_labels": "GT labels that are not instances; their points count as void",
               "gt_classes": "which GT instances are scored: scannet18 = the benchmark's 18 classes (NYU40 ids), "
                             "others void; all_objects = all but --ignore-labels; auto = scannet18 when the GT "
                             "has NYU40 ids"},
    )
    parser.add_argument("scene_h5", help="scene.h5 with ground truth (gt/instance, gt/instance_label)")
    parser.add_argument("pred_h5", help="artifact with point_instance (N,) [instance_score (K,)] [point_box (N,)]")
    parser.add_argument("--out", help="write the metrics as JSON here")
