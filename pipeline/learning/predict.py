"""Final pseudo-labels of one scene from a trained model.

Box mode (BEEP3D): the EMA teacher with centre-refined queries is matched to the scene's boxes;
points inside one box keep it, points inside several go to the box whose query scores them
highest (Eq. 4), points in no box are background (``point_box``). Instance k is box k with the box's
class, less the points box_partition marked as surface background: a wall, floor or jamb running
into the box from outside every box is not the box's object (``point_box`` keeps them, for the
overlap-point accuracy). Every instance scores 1 (``box_scores: one``): an annotated box exists for
certain, and equal scores form one operating point of the ScanNet AP. ``kept_share`` scores an
instance by the share of its box's points it keeps, so the boxes that lost most rank last; on the
real scan it ranked worse than one operating point (README "Quality on real scans"), as did the
teacher's objectness, which is logged.

Unsupervised mode: the student's masks on the full scene, kept when confident enough, after mask
non-maximum suppression; overlaps go to the higher-scored mask, so each point has one instance.
With ``keep_inputs`` (default) the masks the model was trained from (its last phase's file targets,
M^0: NCut and/or lifted masks) stay in the labels, as UnScene3D keeps M^0 in every self-training
round, and the model adds its confident masks that none of them covers. ``input_scores: own``
keeps the inputs' own scores and ranks the added masks after them, so the labels score at least
what their inputs score; ``model`` ranks everything by the model's confidence
(``input_mask_scores`` for the inputs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.params import PredictParams
from pipeline.learning.model.net import InstanceNet, prepare_scene
from pipeline.learning.train.beep3d import Beep3DConfig, SceneBoxes, initial_query_coords, teacher_pseudo_masks
from pipeline.learning.train.data import TrainScene
from pipeline.learning.train.selftrain import SelfTrainConfig, is_novel, predicted_masks

log = logging.getLogger(__name__)

@dataclass
class PseudoLabels:
    point_instance: np.ndarray  # (N,) int32, -1 = none
    instance_score: np.ndarray  # (K,) float32
    instance_class: np.ndarray  # (K,) str
    point_box: np.ndarray | None = None  # (N,) int32 box index per point (box mode), -1 background
    attrs: dict = field(default_factory=dict)

    def arrays(self) -> dict:
        out = {
            "point_instance": self.point_instance.astype(np.int32),
            "instance_score": self.instance_score.astype(np.float32),
            "instance_class": np.asarray(self.instance_class, dtype=str),
        }
        if self.point_box is not None:
            out["point_box"] = self.point_box.astype(np.int32)
        return out


def scene_tensors(scene: TrainScene, voxel_size: float, device):
    return prepare_scene(scene.points, scene.colors, scene.normals, scene.point_superpoint, voxel_size, device)


def kept_share_scores(point_instance: np.ndarray, boxes: SceneBoxes) -> np.ndarray:
    """(B,) float32: the share of each box's points that its instance keeps.

    A box whose points mostly go to other boxes or to the background is one whose mask is least
    certain (``predict.box_scores: kept_share``).
    """
    n_boxes = boxes.n_boxes
    single = boxes.point_box >= 0
    inside = (np.bincount(boxes.point_box[single], minlength=n_boxes)
              + np.bincount(boxes.ambiguous_box, minlength=n_boxes)).astype(np.float64)
    kept = np.bincount(point_instance[point_instance >= 0], minlength=n_boxes).astype(np.float64)
    return np.divide(kept, inside, out=np.zeros(n_boxes), where=inside > 0).astype(np.float32)


@torch.no_grad()
def predict_boxes(teacher: InstanceNet, scene: TrainScene, config: Beep3DConfig, device="cpu",
                  box_scores: str = "one") -> PseudoLabels:
    """Box-mode pseudo-labels (see the module docstring)."""
    boxes = scene.boxes
    if boxes is None or boxes.n_boxes == 0:
        log.warning("%s: no boxes, so every point is background", scene.name)
        empty = np.zeros(0)
        return PseudoLabels(np.full(scene.n_points, -1, np.int32), empty.astype(np.float32), empty.astype(str),
                            np.full(scene.n_points, -1, np.int32), {"n_boxes": 0, "rescued_boxes": []})
    teacher.eval()
    tensors = scene_tensors(scene, teacher.config.voxel_size, device)
    if boxes.n_boxes > teacher.config.n_queries:
        log.warning("%s: %d boxes but only %d queries; boxes without a query keep only their own points "
                    "(ambiguous points fall to the smallest box)", scene.name, boxes.n_boxes, teacher.config.n_queries)
    fractions = torch.from_numpy(scene.box_fractions).to(tensors.sp_coords.device)
    result = teacher_pseudo_masks(teacher, tensors, boxes, fractions, boxes.centre, config)
    if result.rescued:
        log.warning("%s: boxes %s were left (nearly) empty by the teacher (a box inside another?) and keep "
                    "their smallest-box points", scene.name, result.rescued)
    point_box = result.assignment.astype(np.int32)
    point_instance = point_box.copy()
    if boxes.surface_background is not None:
        # a wall or floor running into a box is not its object (box_partition.surface_background)
        point_instance[boxes.surface_background] = -1
    attrs = {"n_boxes": boxes.n_boxes, "rescued_boxes": result.rescued,
             "n_ambiguous": int(len(np.unique(boxes.ambiguous_point))),
             "n_unmatched_boxes": int(boxes.n_boxes - len(result.matching.target))}
    log.info("%s: teacher objectness per box: %s", scene.name, np.round(result.query_score, 2).tolist())
    attrs["n_surface_background"] = int(((point_box >= 0) & (point_instance < 0)).sum())
    if box_scores == "kept_share":
        scores = kept_share_scores(point_instance, boxes)
    elif box_scores == "one":
        scores = np.ones(boxes.n_boxes, np.float32)
    else:
        raise ValueError(f"box_scores must be 'kept_share' or 'one', got {box_scores!r}")
    return PseudoLabels(point_instance, scores, np.asarray(boxes.labels, dtype=str), point_box, attrs)


def masks_to_point_labels(sp_masks: np.ndarray, scores: np.ndarray, point_superpoint: np.ndarray,
                          min_points: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping (N,) instance ids from superpoint masks (M, S): where masks overlap the
    higher score wins; instances left with fewer than ``min_points`` points are dropped and the
    rest renumbered 0..K-1 in decreasing score. Returns (point_instance, instance_score)."""
    sp_masks = np.asarray(sp_masks, bool)
    scores = np.asarray(scores, np.float64)
    n_superpoints = sp_masks.shape[1] if sp_masks.ndim == 2 else 0
    sp_label = np.full(n_superpoints, -1, np.int64)
    for index in np.argsort(scores, kind="stable"):  # ascending: higher scores paint last
        sp_label[sp_masks[index]] = index
    point_label = sp_label[np.asarray(point_superpoint)] if len(point_superpoint) else np.zeros(0, np.int64)
    counts = np.bincount(point_label[point_label >= 0], minlength=len(scores))
    survivors = [i for i in np.argsort(-scores, kind="stable") if counts[i] >= max(min_points, 1)]
    new_id = np.full(len(scores) + 1, -1, np.int64)
    new_id[np.asarray(survivors, np.int64)] = np.arange(len(survivors))
    point_instance = np.where(point_label >= 0, new_id[point_label], -1).astype(np.int32)
    return point_instance, scores[np.asarray(survivors, np.int64)].astype(np.float32)


def input_mask_scores(mask_probs: np.ndarray, objectness: np.ndarray, input_masks: np.ndarray,
                      sp_size: np.ndarray) -> np.ndarray:
    """(K,) the model's confidence in each input mask: over the queries, the highest objectness x
    soft IoU (in points) between the query's mask probabilities (Q, S) and the mask (K, S)."""
    input_masks = np.asarray(input_masks, np.float64) > 0.5
    if len(input_masks) == 0 or len(mask_probs) == 0:
        return np.zeros(len(input_masks), np.float32)
    probs = np.asarray(mask_probs, np.float64) * sp_size[None]  # point-weighted
    masks = input_masks * sp_size[None]
    inter = probs @ input_masks.T.astype(np.float64)  # (Q, K)
    union = probs.sum(1)[:, None] + masks.sum(1)[None] - inter
    soft_iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return (np.asarray(objectness, np.float64)[:, None] * soft_iou).max(0).astype(np.float32)


def with_input_masks(input_masks: np.ndarray, input_scores: np.ndarray, new_masks: np.ndarray, new_scores: np.ndarray,
                     rank_after_inputs: bool) -> tuple[np.ndarray, np.ndarray]:
    """The input masks and the model's new ones, with scores. ``rank_after_inputs``: the new masks'
    scores are scaled below the lowest input score, so they add recall after every input mask and,
    painted first (``masks_to_point_labels``), never take an input mask's points."""
    new_scores = np.asarray(new_scores, np.float32)
    if rank_after_inputs:
        floor = float(np.min(input_scores, initial=1.0))
        new_scores = new_scores * floor * (1 - 1e-6)  # strictly below every input (ties go to the input)
    masks = np.concatenate([np.asarray(input_masks, bool), np.asarray(new_masks, bool)])
    return masks, np.concatenate([np.asarray(input_scores, np.float32), new_scores])


@torch.no_grad()
def predict_unsupervised(model: InstanceNet, scene: TrainScene, params: PredictParams | dict, device="cpu",
                         inputs: tuple[np.ndarray, np.ndarray] | None = None) -> PseudoLabels:
    """Unsupervised-mode pseudo-labels (see the module docstring). ``inputs``: M^0 as (masks (K, S),
    their own scores (K,))."""
    params = PredictParams.from_dict(params)
    model.eval()
    tensors = scene_tensors(scene, model.config.voxel_size, device)
    out = model(tensors, initial_query_coords(tensors, model.config.n_queries))
    cfg = SelfTrainConfig(mask_threshold=params.mask_threshold, nms_iou=params.nms_iou,
                          min_points=params.min_points)
    masks, scores = predicted_masks(out, tensors.sp_size, cfg)
    confident = scores >= params.score_threshold
    attrs = {"n_queries": int(out.last.mask_logits.shape[0]), "n_candidates": int(len(masks)),
             "n_confident": int(confident.sum()), "n_input_masks": 0, "n_novel": int(confident.sum())}
    masks, scores = masks[confident], scores[confident]
    keep_inputs = params.keep_inputs and inputs is not None and len(inputs[0]) > 0
    if keep_inputs:
        input_masks = np.asarray(inputs[0]) > 0.5
        novel = is_novel(masks, input_masks, scene.sp_size, params.novel_iou)
        attrs.update(n_input_masks=int(len(input_masks)), n_novel=int(novel.sum()))
        input_scores = np.asarray(inputs[1], np.float32)
        if params.input_scores == "model":
            probs = out.last.mask_logits.sigmoid().cpu().numpy()
            objectness = (1 - out.last.class_logits.softmax(-1)[:, -1]).cpu().numpy()
            input_scores = input_mask_scores(probs, objectness, input_masks, scene.sp_size)
        masks, scores = with_input_masks(input_masks, input_scores, masks[novel], scores[novel],
                                         rank_after_inputs=params.input_scores == "own")
    point_instance, instance_score = masks_to_point_labels(masks, scores, scene.point_superpoint,
                                                           params.min_points)
    attrs["n_instances"] = int(len(instance_score))
    log.info("%s: %d queries -> %d masks of >= %d points after mask NMS (IoU %.2f) -> %d scored >= %.2f; %s"
             "%d instances after overlaps and the %d-point minimum", scene.name, attrs["n_queries"],
             attrs["n_candidates"], params.min_points, params.nms_iou, attrs["n_confident"],
             params.score_threshold,
             f"{attrs['n_input_masks']} input masks kept, {attrs['n_novel']} novel predicted masks added; "
             if keep_inputs else "", params.min_points, attrs["n_instances"])
    if len(instance_score) == 0:
        log.warning("%s: EMPTY pseudo-labels: %d of %d predicted masks scored >= %.2f (predict.score_threshold) and "
                    "no input masks were kept (predict.keep_inputs, ncut.h5 / lifted.h5 masks)", scene.name,
                    attrs["n_confident"], attrs["n_candidates"], params.score_threshold)
    return PseudoLabels(point_instance, instance_score, np.full(len(instance_score), "object"), None, attrs)

