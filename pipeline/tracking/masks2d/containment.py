"""Containment filtering: drop masks that are redundant because they lie inside another.

Automatic mask generators return several granularities of the same thing (a chair, its seat, its
back). Mask ``a`` lies inside mask ``b`` when ``|a & b| >= tau_contain * |a|``; such a pair is
redundant and only one of the two survives. Which one is the ``keep`` parameter:

* ``"larger"`` (default): the containing mask survives (whole objects over parts);
* ``"smaller"``: the contained mask survives (parts over wholes);
* ``"score"``: the mask with the higher score survives.

Masks are visited in that preference order (ties: lower index first) and a mask is kept unless it
forms a redundant pair with a mask already kept, so the result does not depend on input order
beyond ties, and no two kept masks are redundant with each other.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

KEEP_RULES = ("larger", "smaller", "score")


def pairwise_intersections(masks: np.ndarray) -> np.ndarray:
    """(K, K) int64 pixel counts |m_i & m_j| (the diagonal holds the areas)."""
    masks = np.asarray(masks, bool)
    flat = sparse.csr_matrix(masks.reshape(masks.shape[0], masks.shape[1] * masks.shape[2]), dtype=np.int32)
    return np.asarray((flat @ flat.T).toarray(), np.int64)


def preference_order(areas: np.ndarray, scores: np.ndarray, keep: str) -> np.ndarray:
    index = np.arange(len(areas))
    if keep == "larger":
        return np.lexsort((index, -areas))
    if keep == "smaller":
        return np.lexsort((index, areas))
    if keep == "score":
        return np.lexsort((index, -np.asarray(scores, np.float64)))
    raise ValueError(f"unknown containment keep rule {keep!r}; choose one of {KEEP_RULES}")


def redundant_pairs(intersections: np.ndarray, tau_contain: float) -> np.ndarray:
    """(K, K) bool: the smaller of masks i, j lies at least ``tau_contain`` inside the other."""
    areas = np.diag(intersections)
    smaller = np.minimum(areas[:, None], areas[None, :])
    redundant = (intersections >= tau_contain * smaller) & (smaller > 0)
    np.fill_diagonal(redundant, False)
    return redundant


def containment_filter(masks: np.ndarray, scores: np.ndarray, tau_contain: float = 0.8, keep: str = "larger",
                       min_area: int = 1) -> np.ndarray:
    """Boolean (K,): which masks survive. Masks below ``min_area`` pixels never survive."""
    if not 0 < tau_contain <= 1:
        raise ValueError(f"tau_contain must be in (0, 1], got {tau_contain}")
    masks = np.asarray(masks, bool)
    kept = np.zeros(len(masks), bool)
    if len(masks) == 0:
        return kept
    intersections = pairwise_intersections(masks)
    areas = np.diag(intersections)
    redundant = redundant_pairs(intersections, tau_contain)
    for index in preference_order(areas, scores, keep):
        if areas[index] < max(min_area, 1):
            continue
        if not np.any(redundant[index] & kept):
            kept[index] = True
    return kept
