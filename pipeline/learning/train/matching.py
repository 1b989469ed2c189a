"""Hungarian matching of predicted queries to target masks (scipy's linear_sum_assignment).

Cost of pairing query q with target k (masks over superpoints, soft targets in [0, 1]):
    w_cls * (-p_q(class_k)) + w_bce * BCE(q, k) + w_dice * Dice(q, k) [+ w_centre * |pos_q - centre_k|]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch.nn import functional as F


@dataclass(frozen=True)
class MatchWeights:
    cls: float = 0.5
    bce: float = 1.0
    dice: float = 1.0
    centre: float = 0.0  # distance between a query's position and a box centre (normalised units)


@dataclass
class Matching:
    query: np.ndarray  # (M,) matched query indices
    target: np.ndarray  # (M,) matched target indices (sorted ascending)

    def query_of_target(self, n_targets: int) -> np.ndarray:
        """(K,) int: the query matched to each target, -1 where none."""
        out = np.full(n_targets, -1, np.int64)
        out[self.target] = self.query
        return out


def bce_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(Q, K) mean binary cross-entropy of each query's mask logits against each soft target."""
    n = max(logits.shape[1], 1)
    positive = F.softplus(-logits)  # -log sigmoid(x)
    negative = F.softplus(logits)  # -log(1 - sigmoid(x))
    return (positive @ targets.T + negative @ (1 - targets).T) / n


def dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(Q, K) 1 - soft Dice of each query's mask probabilities against each target."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(1)[:, None] + targets.sum(1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def class_cost(class_logits: torch.Tensor, target_classes: torch.Tensor) -> torch.Tensor:
    """(Q, K) minus the probability each query gives the target's class."""
    return -class_logits.softmax(-1)[:, target_classes]


@torch.no_grad()
def cost_matrix(mask_logits, class_logits, target_masks, target_classes, weights: MatchWeights,
                query_coords=None, target_centres=None) -> torch.Tensor:
    cost = weights.bce * bce_cost(mask_logits.float(), target_masks.float())
    cost = cost + weights.dice * dice_cost(mask_logits.float(), target_masks.float())
    cost = cost + weights.cls * class_cost(class_logits.float(), target_classes)
    if weights.centre and query_coords is not None and target_centres is not None:
        cost = cost + weights.centre * torch.cdist(query_coords.float(), target_centres.float())
    return cost


def hungarian(cost: torch.Tensor | np.ndarray) -> Matching:
    """Minimum-cost one-to-one pairs (min(Q, K) of them); rows are queries, columns targets."""
    cost = cost.detach().cpu().numpy() if isinstance(cost, torch.Tensor) else np.asarray(cost)
    if cost.size == 0:
        return Matching(np.zeros(0, np.int64), np.zeros(0, np.int64))
    cost = np.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)
    rows, cols = linear_sum_assignment(cost)
    order = np.argsort(cols)
    return Matching(rows[order].astype(np.int64), cols[order].astype(np.int64))


def match(mask_logits, class_logits, target_masks, target_classes, weights: MatchWeights = MatchWeights(),
          query_coords=None, target_centres=None) -> Matching:
    if target_masks.shape[0] == 0 or mask_logits.shape[0] == 0:
        return Matching(np.zeros(0, np.int64), np.zeros(0, np.int64))
    return hungarian(cost_matrix(mask_logits, class_logits, target_masks, target_classes, weights, query_coords, target_centres))
