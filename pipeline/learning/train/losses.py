"""Losses over superpoint masks (each is a scalar tensor; an empty set of masks gives 0).

Mask losses (BEEP3D / SPFormer / MAFT): binary cross-entropy and Dice between matched predicted
mask logits and (soft) target masks; a class loss with a down-weighted "no object" class.
BEEP3D's consistency losses: L1 between student and teacher content queries matched to the same
box, and L1 between the mean features under the teacher's and the student's masks.
UnScene3D's DropLoss: unmatched predictions that overlap no target get no "no object" loss.
LESS auxiliaries: area regularisation and a point-to-point contrastive loss.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.sum() * 0.0  # keeps the graph (and device) so .backward() works on empty sets


def mask_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over masks of the mean BCE over superpoints; ``targets`` in [0, 1]."""
    if logits.shape[0] == 0:
        return _zero(logits)
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none").mean(1).mean()


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over masks of 1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)."""
    if logits.shape[0] == 0:
        return _zero(logits)
    probs = logits.sigmoid()
    targets = targets.to(probs.dtype)
    dice = (2 * (probs * targets).sum(1) + 1) / (probs.sum(1) + targets.sum(1) + 1)
    return (1 - dice).mean()


def classification_loss(
    class_logits: torch.Tensor,
    matched_query: torch.Tensor,
    matched_class: torch.Tensor,
    no_object_weight: float = 0.1,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy: matched queries -> their target class, the rest -> "no object" (last column).

    The no-object class is weighted ``no_object_weight``; queries with ``keep`` False add nothing.
    """
    n_queries, n_columns = class_logits.shape
    target = torch.full((n_queries,), n_columns - 1, dtype=torch.long, device=class_logits.device)
    target[matched_query] = matched_class.to(target.device)
    class_weight = torch.ones(n_columns, dtype=class_logits.dtype, device=class_logits.device)
    class_weight[-1] = no_object_weight
    per_query = F.cross_entropy(class_logits, target, reduction="none") * class_weight[target]
    weight = class_weight[target]
    if keep is not None:
        keep = keep.to(per_query.dtype)
        per_query, weight = per_query * keep, weight * keep
    if weight.sum() <= 0:
        return _zero(class_logits)
    return per_query.sum() / weight.sum()


def query_consistency_loss(student_content: torch.Tensor, teacher_content: torch.Tensor) -> torch.Tensor:
    """BEEP3D L_q: mean L1 distance between student and (detached) teacher content queries."""
    if student_content.shape[0] == 0:
        return _zero(student_content)
    return (student_content - teacher_content.detach()).abs().mean()


def masked_mean_features(features: torch.Tensor, masks: torch.Tensor, sp_size: torch.Tensor) -> torch.Tensor:
    """(K, H) mean feature of the points under each (soft) mask: superpoints weighted by size."""
    weights = masks * sp_size[None]
    return (weights @ features) / weights.sum(1, keepdim=True).clamp(min=1e-6)


FEATURE_FORMS = ("paper", "mean_abs")


def masked_feature_consistency_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    student_masks: torch.Tensor,
    teacher_masks: torch.Tensor,
    sp_size: torch.Tensor,
    form: str = "mean_abs",
) -> torch.Tensor:
    """BEEP3D L_f between the teacher's mean feature under its pseudo-mask and the student's mean
    feature under its predicted (soft) mask, per matched box.

    ``form``: "paper" (Eq. 8-10) sums the squared L2 distances over the boxes; "mean_abs" is the
    mean absolute difference over boxes and channels (scale-free in both). ``student_masks`` are
    probabilities (differentiable); teacher features and masks are detached.
    """
    if form not in FEATURE_FORMS:
        raise ValueError(f"unknown masked-feature loss form {form!r} (expected one of {FEATURE_FORMS})")
    if student_masks.shape[0] == 0:
        return _zero(student_features)
    teacher_mean = masked_mean_features(teacher_features.detach(), teacher_masks.detach().to(teacher_features.dtype), sp_size)
    student_mean = masked_mean_features(student_features, student_masks, sp_size)
    if form == "paper":
        return ((student_mean - teacher_mean) ** 2).sum()
    return (student_mean - teacher_mean).abs().mean()


def area_loss(mask_logits: torch.Tensor) -> torch.Tensor:
    """LESS area regularisation: the mean mask probability (discourages sprawling masks)."""
    if mask_logits.numel() == 0:
        return _zero(mask_logits)
    return mask_logits.sigmoid().mean()


def point_contrastive_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """LESS point-to-point contrast: each labelled superpoint is pulled toward its mask's mean
    feature and pushed from the other masks' means (softmax over cosine similarities).

    ``labels`` (S,): mask index per superpoint, -1 = in no mask (ignored).
    """
    labelled = labels >= 0
    if labelled.sum() == 0:
        return _zero(features)
    ids, inverse = torch.unique(labels[labelled], return_inverse=True)
    if len(ids) < 2:
        return _zero(features)  # nothing to push against
    feats = F.normalize(features[labelled], dim=1)
    one_hot = F.one_hot(inverse, len(ids)).to(feats.dtype)
    centres = F.normalize(one_hot.T @ feats / one_hot.sum(0)[:, None], dim=1)
    logits = feats @ centres.T / temperature
    return F.cross_entropy(logits, inverse)


def mask_iou(pred: torch.Tensor, target: torch.Tensor, sp_size: torch.Tensor) -> torch.Tensor:
    """(Q, K) IoU in points of binary masks over superpoints (superpoints weighted by size)."""
    pred = pred.to(sp_size.dtype) * sp_size[None]
    target = target.to(sp_size.dtype)
    intersection = pred @ target.T
    union = pred.sum(1)[:, None] + (target * sp_size[None]).sum(1)[None] - intersection
    return intersection / union.clamp(min=1e-6)


def drop_loss_keep(mask_logits: torch.Tensor, target_masks: torch.Tensor, sp_size: torch.Tensor, tau_drop: float,
                   matched_query: torch.Tensor | None = None) -> torch.Tensor:
    """(Q,) bool: queries whose loss counts under DropLoss (UnScene3D, after CutLER).

    A prediction whose IoU with every target mask is below ``tau_drop`` may be an object the
    pseudo-labels missed, so it is not pushed to "no object". Matched queries always count.
    """
    with torch.no_grad():
        predicted = mask_logits > 0
        if target_masks.shape[0] == 0:
            keep = torch.zeros(mask_logits.shape[0], dtype=torch.bool, device=mask_logits.device)
        else:
            keep = mask_iou(predicted, target_masks > 0.5, sp_size).max(1).values >= tau_drop
        if matched_query is not None:
            keep[matched_query] = True
    return keep
