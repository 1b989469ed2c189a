"""Unsupervised training (UnScene3D) and the granularity-consistent curriculum.

Class-agnostic: the class head has one "object" class plus "no object". Predictions are matched
to the pseudo-masks by the Hungarian algorithm; matched ones learn their mask and "object";
unmatched ones learn "no object" except under DropLoss, when their IoU with every pseudo-mask is
below ``tau_drop`` (they may be objects the pseudo-masks missed).

Training runs in *phases*, each naming the target sources it learns from:
- ``ncut``: UnScene3D's NCut masks (ncut.h5); ``lifted``: tracked multi-view masks (lifted.h5);
- ``raw_views``: each keyframe's own 2D masks before tracking, on the points that view observes
  (lifted.h5 raw_views/*); each sample is the part of a scene one view's masks cover (curriculum
  stage 1, as the granularity-consistent paper trains it first);
- ``lifted_views``: the tracked objects' masks per view (lifted.h5 views/*), sampled the same way
  (stage 1 on already tracked masks);
- ``predicted``: the model's own confident predictions on full scenes, computed at the start of
  the phase. Together with other sources it adds only masks they do not already cover
  (UnScene3D's mask addition onto the fixed initial set); alone it is the curriculum's stage 3
  (confidence-filtered full-scene predictions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.learning.model.net import NetOutput, SceneTensors
from pipeline.learning.train import losses
from pipeline.learning.train.beep3d import LossWeights, mask_set_losses
from pipeline.learning.train.matching import MatchWeights

SOURCES = ("ncut", "lifted", "lifted_views", "raw_views", "predicted")
VIEW_SOURCES = ("lifted_views", "raw_views")  # trained on one view's crop at a time


@dataclass(frozen=True)
class SelfTrainConfig:
    tau_drop: float = 0.01  # DropLoss IoU threshold (CutLER / UnScene3D)
    tau_conf: float = 0.5  # confidence a prediction needs to become a pseudo-mask
    novel_iou: float = 0.5  # an added prediction must overlap every existing pseudo-mask less than this
    duplicate_iou: float = 0.5  # when sources are merged, a mask this close to an earlier one is a duplicate
    min_points: int = 30  # smaller predicted masks are ignored
    mask_threshold: float = 0.5  # probability above which a superpoint is in a predicted mask
    nms_iou: float = 0.5  # non-maximum suppression between predicted masks


def label_fractions(point_label: np.ndarray, point_superpoint: np.ndarray, sp_size: np.ndarray, n_labels: int | None = None) -> np.ndarray:
    """(K, S) fraction of each superpoint's points carrying each label (-1 = none)."""
    point_label = np.asarray(point_label, np.int64)
    n_labels = int(point_label.max()) + 1 if n_labels is None else n_labels
    n_labels = max(n_labels, 0)
    n_superpoints = len(sp_size)
    labelled = point_label >= 0
    keys = point_label[labelled] * n_superpoints + np.asarray(point_superpoint)[labelled]
    counts = np.bincount(keys, minlength=n_labels * n_superpoints)[: n_labels * n_superpoints]
    return (counts.reshape(n_labels, n_superpoints) / np.maximum(sp_size, 1)[None]).astype(np.float32)


def mask_iou_np(a: np.ndarray, b: np.ndarray, sp_size: np.ndarray) -> np.ndarray:
    """(A, B) IoU in points of boolean superpoint masks."""
    a = np.asarray(a, bool).astype(np.float64) * sp_size[None]
    b = np.asarray(b, bool).astype(np.float64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + (b * sp_size[None]).sum(1)[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def merge_mask_sources(sources: list[np.ndarray], sp_size: np.ndarray, duplicate_iou: float,
                       scores: list[np.ndarray] | None = None):
    """Union of mask sets (each (K_i, S) in [0, 1]) in order; a mask whose binarised IoU with one
    already taken is at least ``duplicate_iou`` is dropped. Empty masks are dropped. With
    ``scores`` (one (K_i,) array per set) returns (masks, scores of the kept masks)."""
    n_superpoints = len(sp_size)
    taken: list[np.ndarray] = []
    kept_scores: list[float] = []
    for index, masks in enumerate(sources):
        masks = np.asarray(masks, np.float32).reshape(-1, n_superpoints)
        for row, mask in enumerate(masks):
            binary = mask > 0.5
            if not binary.any():
                continue
            if taken and mask_iou_np(binary[None], np.stack(taken) > 0.5, sp_size).max() >= duplicate_iou:
                continue
            taken.append(mask)
            kept_scores.append(float(scores[index][row]) if scores is not None else 1.0)
    merged = np.stack(taken) if taken else np.zeros((0, n_superpoints), np.float32)
    return (merged, np.asarray(kept_scores, np.float32)) if scores is not None else merged


FILE_SOURCES = ("ncut", "lifted")


def chosen_file_sources(sources: dict[str, np.ndarray], targets) -> list[str]:
    """The file sources a phase's ``targets`` take from a scene: each target is a source name or
    alternatives ("lifted|ncut": the first of them this scene has masks from)."""
    chosen = []
    for target in targets:
        for name in target.split("|"):
            if name in FILE_SOURCES and len(sources.get(name, ())):
                chosen.append(name)
                break
    return chosen


def ranked_in_order(scores: list[np.ndarray]) -> list[np.ndarray]:
    """Each set's scores scaled strictly below every score of the sets before it, order kept within
    a set. Scores of different sources do not compare (NCut's boundary contrast, the lift's vote
    share), so the order of the targets says which source ranks first."""
    out, floor = [], None
    for values in scores:
        values = np.asarray(values, np.float32)
        if floor is not None:
            values = values * floor * np.float32(1 - 1e-6)
        out.append(values)
        floor = float(np.min(values, initial=1.0 if floor is None else floor))
    return out


def file_targets(sources: dict[str, np.ndarray], targets, sp_size: np.ndarray, duplicate_iou: float,
                 source_scores: dict[str, np.ndarray] | None = None):
    """A scene's pseudo-masks from file sources for a phase's ``targets`` (``chosen_file_sources``):
    their union with duplicates dropped (``merge_mask_sources``: an earlier source wins); non-file
    targets (predicted, ...) add nothing. With ``source_scores`` also returns each kept mask's score:
    its own within its source, every source ranked after the ones before it (``ranked_in_order``)."""
    names = chosen_file_sources(sources, targets)
    scores = None
    if source_scores is not None:
        scores = ranked_in_order([source_scores.get(name, np.ones(len(sources[name]), np.float32)) for name in names])
    return merge_mask_sources([sources[name] for name in names], sp_size, duplicate_iou, scores)


def predicted_masks(output: NetOutput, sp_size: torch.Tensor, config: SelfTrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Masks (M, S) bool and scores (M,) of the final layer, after size filter and mask NMS.

    Score = objectness (1 - p(no object)) x mean probability inside the mask (as in Mask3D).
    """
    last = output.last
    probs = last.mask_logits.sigmoid()
    masks = probs > config.mask_threshold
    objectness = 1 - last.class_logits.softmax(-1)[:, -1]
    inside = (probs * masks).sum(1) / masks.sum(1).clamp(min=1)
    scores = (objectness * inside).detach().cpu().numpy()
    masks = masks.cpu().numpy()
    size = sp_size.cpu().numpy()
    points = masks.astype(np.float64) @ size
    keep = np.flatnonzero(points >= config.min_points)
    masks, scores = masks[keep], scores[keep]
    keep = mask_nms(masks, scores, size, config.nms_iou)
    return masks[keep], scores[keep]


def mask_nms(masks: np.ndarray, scores: np.ndarray, sp_size: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (highest score first)."""
    order = np.argsort(-scores, kind="stable")
    if len(order) == 0:
        return order
    iou = mask_iou_np(masks, masks, sp_size)
    kept: list[int] = []
    for i in order:
        if all(iou[i, j] < iou_threshold for j in kept):
            kept.append(int(i))
    return np.asarray(kept, np.int64)


def is_novel(masks: np.ndarray, existing: np.ndarray, sp_size: np.ndarray, novel_iou: float) -> np.ndarray:
    """(M,) bool: the mask covers new ground. Its IoU with every existing pseudo-mask is below
    ``novel_iou``, and so is the share of its points that existing masks already cover (a mask
    spanning many existing ones has a low IoU with each, yet adds nothing: it would only swallow them)."""
    masks = np.asarray(masks, bool)
    existing = np.asarray(existing) > 0.5
    if len(masks) == 0 or len(existing) == 0:
        return np.ones(len(masks), bool)
    iou = mask_iou_np(masks, existing, sp_size)
    points = masks.astype(np.float64) @ sp_size
    covered = (masks & existing.any(0)[None]).astype(np.float64) @ sp_size
    share = np.divide(covered, points, out=np.zeros_like(points), where=points > 0)
    return (iou.max(1) < novel_iou) & (share < novel_iou)


def novel_masks(masks: np.ndarray, existing: np.ndarray, sp_size: np.ndarray, novel_iou: float) -> np.ndarray:
    """The masks that cover new ground (``is_novel``), as float."""
    masks = np.asarray(masks, bool)
    return masks[is_novel(masks, existing, sp_size, novel_iou)].astype(np.float32)


def confident_novel_masks(masks: np.ndarray, scores: np.ndarray, existing: np.ndarray, sp_size: np.ndarray,
                          config: SelfTrainConfig) -> np.ndarray:
    """Mask addition: predictions scored >= tau_conf that no existing pseudo-mask covers already."""
    return novel_masks(np.asarray(masks)[np.asarray(scores) >= config.tau_conf], existing, sp_size, config.novel_iou)


def unsupervised_losses(output: NetOutput, targets: torch.Tensor, scene: SceneTensors, weights: LossWeights,
                        match_weights: MatchWeights, config: SelfTrainConfig) -> dict:
    """Class-agnostic mask losses with DropLoss against pseudo-masks (K, S)."""
    classes = torch.zeros(targets.shape[0], dtype=torch.long, device=targets.device)

    def keep(layer, matching):
        matched = torch.from_numpy(matching.query).to(targets.device)
        return losses.drop_loss_keep(layer.mask_logits, targets, scene.sp_size, config.tau_drop, matched)

    terms, _ = mask_set_losses(output, targets, classes, scene.sp_size, weights, match_weights, keep)
    return terms
