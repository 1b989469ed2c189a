"""Masked iterative Normalized Cut over superpoints (UnScene3D, arXiv 2303.14541, Algorithm 1).

Graph: one node per superpoint. For each feature modality (2D, 3D) the affinity is the cosine
similarity of the L2-normalised superpoint features, min-max normalised over the scene
(``affinity_normalization: minmax``, as UnScene3D's public code; ``none`` keeps raw cosines). The
modalities are averaged with weights (``weight_2d`` for 2D, 1 - ``weight_2d`` for 3D); a pair of
superpoints of which one was never seen in any frame has no 2D affinity and uses 3D alone. The
average is binarised: W_ij = 1 where it exceeds ``tau_cut``, ``eps`` elsewhere (the paper's 0.65
with both modalities, 0.55 with 3D only).

Before the first cut, superpoints that features_3d flags as room structure (floor, walls,
ceiling: planar superpoints whose plane bounds the scan, see pipeline/unscene3d/features/structure.py) are
masked out (``structure: mask``), exactly as if an earlier iteration had segmented them: UnScene3D
wants a sparse set of clean foreground masks, and without this the first cuts are the floor and
the walls, and objects standing on them leak into those masks. ``structure: keep`` cuts them like
anything else.

Each iteration solves the generalised eigenproblem (D - W) v = lambda D v for the second-smallest
eigenvector and turns it into one mask:

1. orient v so its largest-magnitude entry is positive; foreground = entries above the mean of v
   (so the foreground holds the entry of largest |v|);
2. if the foreground covers more than ``invert_fraction`` of the graph's nodes it is taken to be
   background and inverted (v is negated with it);
3. seed = the foreground node with the largest (oriented) v; the mask is the connected component
   of the foreground, over superpoint adjacency, that holds the seed (``component: seed``; the
   public code's alternatives ``largest`` and ``mean`` |v| are available);
4. the mask is accepted unless it has fewer than ``min_segments`` superpoints, more than
   ``max_overlap`` of it lies in already-accepted masks, or it is background (``background:
   extent``: it spans more than ``max_extent_ratio`` of the scene along both horizontal axes, the
   public code's extent test; it matters when structure was not found or not masked); accepted
   masks lose the superpoints already taken, so masks are disjoint;
5. the candidate's superpoints, accepted or not, are masked out for the next iterations.

A graph without any better-than-random cut (a complete 0/1 graph, or a constant eigenvector) is
one region: all of it becomes the foreground.

It stops after ``max_instances`` accepted masks, ``max_iterations`` iterations, or when fewer
than max(3, min_segments) superpoints remain.

Splitting (a departure from UnScene3D, ``split_max_ncut``; 0 turns it off): one cut of the whole
graph often takes neighbouring objects that look alike together (on scene0000_00 one mask held
shelves, a table and two cabinets, 20 % of the scan). Each accepted mask is therefore cut again on
its own graph, Shi & Malik's recursive two-way cut: bipartition at the mean of the second
eigenvector, kept while NCut(A, B) <= ``split_max_ncut`` and both sides hold ``min_segments``
superpoints. A mask that is one object has no cheap cut inside it and stays whole. 0.25 was chosen
on scene0000_00 and three generated rooms together (benchmarks/ncut.py), with 64-wide features:
AP50 0.160 -> 0.208 on the real scan, 0.705 -> 0.755 on the rooms. With the 2048-wide features it
still scores best on the rooms (AP50 0.673 unsplit, 0.694 at 0.2, 0.733 at 0.25, 0.718 at 0.3); on
scene0000_00 and three perturbed copies of it (70-85 % of the points, rotated, jittered), over
projection seeds, 0.2 scored higher (mean AP50 0.214 against 0.185; unsplit 0.084) but 0.175
fell to 0.178: the optimum is narrow, so the rooms' choice is kept.

Merging (``merge_min_ncut``, 0 turns it off): the opposite error. When little is left in the graph,
the iteration's bipartition can halve an object whose superpoints are all alike (the generated
rooms' cabinets, a test room's tall cabinet), and both halves are accepted. Two masks that touch are
joined while the NCut value between them on their union's graph exceeds 0.5 (twice the split
threshold, so no split is undone): rooms 0.604 / 0.733 -> 0.657 / 0.772 AP / AP50; on scene0000_00
and its perturbed copies it joins a few masks and changes no AP.

Details where the paper and the public code differ, or leave a choice, are parameters, with
defaults measured on the real scan scene0000_00 (point colours + position kernel) and the
generated rooms (benchmarks/ncut.py): ``invert_fraction`` (public code: 0.8 of all superpoints),
``min_segments`` (the paper's setting is 8, the public code's 4 with coarser superpoints of >= 50
vertices; 2 measured best on both the real scan and the generated rooms, 8 lost small objects),
``max_overlap`` (public code: 0.5), ``max_iterations`` (the public code stops after 20 iterations,
accepted or not; 100 here: with 20 the rejected small candidates use up the budget and the real
scan got 7 to 14 masks), ``max_instances`` (public code: 20), and ``masking``: ``remove`` (default)
deletes masked superpoints from the graph, ``eps`` (the paper's form) keeps them with affinity
eps to everything, so they still shape v, and splits only the unmasked entries of v (masked
superpoints are never segmented again). The min-max normalisation is computed once on the whole
scene (the public code recomputes it after zeroing masked features, which only shifts it
slightly).

Solvers: ``dense`` is the plain reference, scipy.linalg.eigh on the full (D - W, D) pencil.
``lanczos`` (production) works on the normalised affinity D^-1/2 W D^-1/2 (whose eigenvectors u
give v = D^-1/2 u): its top eigenvector D^1/2 1 (eigenvalue 1) is deflated and ARPACK (scipy
eigsh) finds the next largest eigenvalue, 1 - lambda_2. Up to 500 nodes the operator is a dense
array; above, it is applied matrix-free as W = eps 11^T + (1 - eps) B with B the sparse 0/1 matrix
of pairs above tau_cut. ``auto`` uses dense below ``dense_below`` nodes. Decisions on v use a
small tie tolerance so both solvers give the same masks (see ``foreground``).

Scores (``score``) rank the masks for AP; none is a calibrated probability. ``contrast``
(default): 1 - the mean un-binarised affinity over the superpoint adjacency edges that leave the
mask: an object is set off from what touches it, a fragment or a merger of neighbours is not (a
mask with no edge leaving it scores 1). ``ncut``: 1 - NCut(A, rest) / 2 on the binarised graph of
the iteration that produced it, with NCut(A, B) = cut(A, B) / assoc(A, V) + cut(A, B) / assoc(B, V)
(it ranked worse than uniform scores on the real scan: the cleanest cuts are often large
regions). ``uniform``: every mask 1, as UnScene3D's unscored pseudo masks. The NCut score is
always stored as ``ncut_score``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sparse
import scipy.sparse.csgraph as csgraph
from scipy.sparse.linalg import ArpackError, LinearOperator, eigsh

from pipeline.params import NcutParams

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Affinity
# --------------------------------------------------------------------------------------------


@dataclass
class Modality:
    """Superpoint features of one modality; ``valid`` marks superpoints that have them."""

    name: str
    features: np.ndarray  # (S, C)
    weight: float
    valid: np.ndarray | None = None  # (S,) bool; None = all

    def __post_init__(self):
        x = np.asarray(self.features, np.float32)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        self.features = np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-12)
        valid = norm[:, 0] > 1e-12
        self.valid = valid if self.valid is None else (np.asarray(self.valid, bool) & valid)


def _row_blocks(n: int, block: int):
    for start in range(0, n, block):
        yield slice(start, min(n, start + block))


def cosine_range(modality: Modality, block: int = 2048) -> tuple[float, float]:
    """(min, max) cosine similarity over pairs of valid superpoints."""
    x = modality.features[modality.valid]
    low, high = np.inf, -np.inf
    for rows in _row_blocks(len(x), block):
        sim = x[rows] @ x.T
        low, high = min(low, float(sim.min())), max(high, float(sim.max()))
    return (low, high) if np.isfinite(low) else (0.0, 1.0)


def affinity_rows(modalities: list[Modality], rows: slice, ranges: list[tuple[float, float]] | None) -> np.ndarray:
    """Weighted-average (normalised) cosine affinity of superpoints ``rows`` to all superpoints."""
    numerator = 0.0
    denominator = 0.0
    for index, m in enumerate(modalities):
        sim = m.features[rows] @ m.features.T
        if ranges is not None:
            low, high = ranges[index]
            sim = np.clip((sim - low) / max(high - low, 1e-12), 0.0, 1.0)
        present = (m.valid[rows, None] & m.valid[None, :]).astype(np.float32) * m.weight
        numerator = numerator + present * sim
        denominator = denominator + present
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def binarised_affinity(modalities: list[Modality], tau: float, normalization: str = "minmax", block: int = 2048) -> sparse.csr_matrix:
    """(S, S) sparse 0/1 matrix of superpoint pairs whose affinity exceeds ``tau``."""
    if normalization not in ("minmax", "none"):
        raise ValueError(f"affinity_normalization must be 'minmax' or 'none', got {normalization!r}")
    n = len(modalities[0].features)
    ranges = [cosine_range(m, block) for m in modalities] if normalization == "minmax" else None
    pieces = []
    for rows in _row_blocks(n, block):
        pieces.append(sparse.csr_matrix(affinity_rows(modalities, rows, ranges) > tau, dtype=np.float32))
    return sparse.vstack(pieces, format="csr") if pieces else sparse.csr_matrix((0, 0), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Second generalised eigenvector of (D - W, D) with W = eps + (1 - eps) B
# --------------------------------------------------------------------------------------------


def degrees(above: sparse.csr_matrix, eps: float) -> np.ndarray:
    n = above.shape[0]
    return eps * n + (1 - eps) * np.asarray(above.sum(axis=1), np.float64).ravel()


def dense_weights(above: sparse.csr_matrix, eps: float) -> np.ndarray:
    return np.where(above.toarray() > 0, 1.0, eps)


def second_eigenvector_dense(above: sparse.csr_matrix, eps: float) -> np.ndarray:
    """Reference: generalised symmetric eigh of the full (D - W, D) pencil, second-smallest pair."""
    weights = dense_weights(above, eps)
    degree = np.diag(weights.sum(axis=1))
    _, vectors = scipy.linalg.eigh(degree - weights, degree, subset_by_index=[1, 1])
    return vectors[:, 0]


def second_eigenvector_lanczos(above: sparse.csr_matrix, eps: float, tol: float = 1e-7, seed: int = 0,
                               matrix_free_above: int = 500) -> np.ndarray:
    """Top eigenvector of the deflated normalised affinity D^-1/2 W D^-1/2 - u0 u0^T by ARPACK.

    Up to ``matrix_free_above`` nodes the operator is formed as a dense array (ARPACK then
    multiplies with BLAS, no Python call per product); above, it is applied matrix-free from the
    sparse 0/1 matrix and the rank-one eps term, in O(nnz) memory.
    """
    n = above.shape[0]
    d = degrees(above, eps)
    inv_sqrt = 1.0 / np.sqrt(d)
    top = np.sqrt(d) / np.linalg.norm(np.sqrt(d))  # eigenvector of eigenvalue 1
    if n <= matrix_free_above:
        operator = inv_sqrt[:, None] * dense_weights(above, eps) * inv_sqrt[None, :]
        operator -= np.outer(top, top)
    else:
        # A dense B is faster to multiply once it is more than a fifth full.
        matrix = above.toarray().astype(np.float64) if above.nnz > 0.2 * n * n else above.astype(np.float64)

        def apply(x):
            x = np.asarray(x, np.float64).reshape(n, -1)
            y = inv_sqrt[:, None] * x
            y = inv_sqrt[:, None] * (eps * y.sum(axis=0, keepdims=True) + (1 - eps) * (matrix @ y))
            return y - top[:, None] * (top @ x)[None, :]

        operator = LinearOperator((n, n), matvec=apply, matmat=apply, dtype=np.float64)
    start = np.random.default_rng(seed).standard_normal(n)
    _, vectors = eigsh(operator, k=1, which="LA", v0=start, tol=tol)
    return inv_sqrt * vectors[:, 0]


def second_eigenvector(above: sparse.csr_matrix, eps: float, solver: str = "auto", dense_below: int = 64,
                       tol: float = 1e-7, seed: int = 0) -> np.ndarray:
    if solver not in ("auto", "lanczos", "dense"):
        raise ValueError(f"solver must be auto, lanczos or dense, got {solver!r}")
    n = above.shape[0]
    if above.nnz == n * n:
        return np.ones(n)  # complete graph: every cut is as bad as any other
    if solver == "dense" or (solver == "auto" and n < dense_below):
        return second_eigenvector_dense(above, eps)
    try:
        return second_eigenvector_lanczos(above, eps, tol, seed)
    except ArpackError as exc:  # e.g. no convergence on a nearly degenerate spectrum
        log.warning("ARPACK failed on a %d-node graph (%s); using the dense solver", n, exc)
        return second_eigenvector_dense(above, eps)


# --------------------------------------------------------------------------------------------
# One cut -> one mask
# --------------------------------------------------------------------------------------------


TIE_TOLERANCE = 1e-5  # entries of v closer than this (relative to max |v|) are treated as equal


def foreground(vector: np.ndarray, invert_fraction: float) -> tuple[np.ndarray, int]:
    """(bool foreground, seed index) of a bipartition at the mean (steps 1-3 of the docstring).

    Decisions are made with a tolerance so that two solvers whose eigenvectors agree to numerical
    precision make the same choices: entries within TIE_TOLERANCE of the mean count as background,
    and ties for the largest |v| (symmetric nodes) go to the smaller side, then the lower index.
    A constant vector (no cut better than any other, e.g. a complete graph) makes everything
    foreground: the remaining graph is one region.
    """
    v = np.asarray(vector, np.float64)
    scale = float(np.abs(v).max()) if len(v) else 0.0
    if scale == 0 or v.max() - v.min() <= 1e-9 * scale:
        return np.ones(len(v), bool), 0
    v = v / scale
    tol = TIE_TOLERANCE
    above = v > v.mean() + tol
    below = v < v.mean() - tol
    extreme = np.abs(v) >= 1.0 - tol
    positive_extreme, negative_extreme = bool(np.any(extreme & (v > 0))), bool(np.any(extreme & (v < 0)))
    if positive_extreme and negative_extreme:
        # Equally extreme on both sides: foreground is the side above the mean if it is the smaller.
        flip = above.sum() > below.sum()
    else:
        flip = negative_extreme
    if flip:
        v = -v
    fg = v > v.mean() + tol
    if fg.mean() > invert_fraction:
        fg = ~fg
        v = -v
    best = np.where(fg, v, -np.inf)
    seed = int(np.flatnonzero(best >= best.max() - tol)[0])
    return fg, seed


def components(fg: np.ndarray, adjacency: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(foreground node indices, component label of each) over ``adjacency`` restricted to ``fg``."""
    nodes = np.flatnonzero(fg)
    _, labels = csgraph.connected_components(adjacency[nodes][:, nodes], directed=False)
    return nodes, labels


def seed_component(fg: np.ndarray, seed: int, adjacency: sparse.csr_matrix) -> np.ndarray:
    """bool mask of the connected component of ``fg`` (over ``adjacency``) that holds ``seed``."""
    return select_component(fg, seed, adjacency, np.zeros(len(fg)), "seed")


def select_component(fg: np.ndarray, seed: int, adjacency: sparse.csr_matrix, vector: np.ndarray, rule: str) -> np.ndarray:
    """One connected component of the foreground: the seed's (``seed``, the paper), the one with
    the highest mean |v| (``mean``) or the one with the most superpoints (``largest``); the last two
    are the public code's "avg" and "largest" separation modes."""
    nodes, labels = components(fg, adjacency)
    if rule == "seed":
        chosen = labels[int(np.searchsorted(nodes, seed))]
    elif rule == "largest":
        chosen = int(np.argmax(np.bincount(labels)))
    elif rule == "mean":
        magnitude = np.bincount(labels, weights=np.abs(vector[nodes])) / np.bincount(labels)
        chosen = int(np.argmax(magnitude))
    else:
        raise ValueError(f"component must be seed, largest or mean, got {rule!r}")
    keep = np.zeros(len(fg), bool)
    keep[nodes[labels == chosen]] = True
    return keep


def ncut_value(above: sparse.csr_matrix, mask: np.ndarray, eps: float) -> float:
    """NCut(mask, rest) = cut / assoc(mask) + cut / assoc(rest) on the graph W = eps + (1 - eps) B."""
    d = degrees(above, eps)
    assoc_a = d[mask].sum()
    assoc_b = d[~mask].sum()
    size = int(mask.sum())
    inside = eps * size * size + (1 - eps) * above[mask][:, mask].sum()
    cut = assoc_a - inside
    return float((cut / assoc_a if assoc_a > 0 else 0.0) + (cut / assoc_b if assoc_b > 0 else 0.0))


def ncut_score(above: sparse.csr_matrix, mask: np.ndarray, eps: float) -> float:
    """1 - NCut(mask, rest) / 2, in [0, 1]."""
    return float(np.clip(1.0 - ncut_value(above, mask, eps) / 2.0, 0.0, 1.0))


def adjacency_matrix(pairs: np.ndarray, n: int) -> sparse.csr_matrix:
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    ones = np.ones(len(pairs), np.int8)
    matrix = sparse.coo_matrix((ones, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return (matrix + matrix.T).tocsr()


# --------------------------------------------------------------------------------------------
# The iteration
# --------------------------------------------------------------------------------------------


@dataclass
class NCutResult:
    masks: np.ndarray  # (M, S) bool, disjoint
    scores: np.ndarray  # (M,) float32
    n_iterations: int
    n_rejected: int
    stop_reason: str
    iterations: list = field(default_factory=list)  # per iteration: nodes, candidate size, accepted


def masked_ncut(above: sparse.csr_matrix, adjacency_pairs: np.ndarray, params: NcutParams | dict | None = None,
                premasked: np.ndarray | None = None, is_background=None) -> NCutResult:
    """Iterative masked NCut on the binarised affinity ``above`` (S, S) and superpoint adjacency.

    ``premasked`` (S,) bool: superpoints masked out before the first cut (room structure), as if
    an earlier iteration had taken them. ``is_background(superpoint_indices) -> bool`` rejects a
    candidate as background: it is masked out like any candidate but never becomes a mask."""
    p = NcutParams.from_dict(params)  # a dict (tests, benchmarks) is checked and completed from the defaults
    if p.masking not in ("remove", "eps"):
        raise ValueError(f"masking must be 'remove' or 'eps', got {p.masking!r}")
    above = sparse.csr_matrix(above, dtype=np.float32)
    n = above.shape[0]
    adjacency = adjacency_matrix(adjacency_pairs, n)
    eps = float(p.eps)
    min_segments = p.min_segments
    # masked out of the graph: structure, then every candidate (accepted or rejected)
    masked = np.zeros(n, bool) if premasked is None else np.asarray(premasked, bool).copy()
    taken = np.zeros(n, bool)  # in an accepted mask
    masks, scores, log = [], [], []
    n_rejected = 0
    stop = "max_iterations"
    iteration = 0
    while iteration < p.max_iterations:
        if len(masks) >= p.max_instances:
            stop = "max_instances"
            break
        if (~masked).sum() < max(3, min_segments):
            stop = "no_superpoints_left"
            break
        nodes = np.flatnonzero(~masked)
        if p.masking == "remove":
            graph, in_graph = above[nodes][:, nodes], np.arange(len(nodes))
        else:
            # The paper's form: masked superpoints stay in the graph with affinity eps to all, so
            # they shape the eigenvector, but they are never segmented again (only the unmasked
            # entries of v are split).
            keep = sparse.diags((~masked).astype(np.float32))
            graph, in_graph = (keep @ above @ keep).tocsr(), nodes
        vector = second_eigenvector(graph, eps, p.solver, p.dense_below, float(p.solver_tol), p.seed + iteration)[in_graph]
        fg, seed = foreground(vector, float(p.invert_fraction))
        local = select_component(fg, seed, adjacency[nodes][:, nodes], vector, p.component)
        candidate = nodes[local]
        overlap = taken[candidate].mean() if len(candidate) else 1.0
        accepted = len(candidate) >= min_segments and overlap <= float(p.max_overlap)
        background = bool(accepted and is_background is not None and is_background(candidate))
        accepted = accepted and not background
        new = candidate[~taken[candidate]]
        if accepted and len(new):
            mask = np.zeros(n, bool)
            mask[new] = True
            masks.append(mask)
            in_mask = np.zeros(graph.shape[0], bool)
            in_mask[in_graph[local]] = True
            scores.append(ncut_score(graph, in_mask, eps))
            taken[new] = True
        else:
            n_rejected += 1
        log.append({"nodes": int(len(nodes)), "candidate": int(len(candidate)), "accepted": bool(accepted and len(new)),
                    "overlap": float(overlap), "background": background})
        masked[candidate] = True
        iteration += 1
        if iteration % 10 == 0:
            logging.getLogger(__name__).info("ncut: %d iterations, %d masks accepted, %d of %d superpoints left",
                                             iteration, len(masks), int((~masked).sum()), n)
    return NCutResult(
        masks=np.asarray(masks, bool).reshape(-1, n),
        scores=np.asarray(scores, np.float32),
        n_iterations=iteration,
        n_rejected=n_rejected,
        stop_reason=stop,
        iterations=log,
    )


def split_recursively(above: sparse.csr_matrix, nodes: np.ndarray, max_ncut: float, min_segments: int, eps: float,
                      solver: str = "auto", dense_below: int = 64, tol: float = 1e-7, seed: int = 0) -> list[np.ndarray]:
    """Shi & Malik's recursive two-way cut of one mask: the mask's own graph (``above`` restricted
    to ``nodes``) is bipartitioned at the mean of its second eigenvector, and the cut is kept when
    its value NCut(A, B) = cut / assoc(A) + cut / assoc(B) (on W = eps + (1 - eps) B) is at most
    ``max_ncut`` and both sides hold ``min_segments`` superpoints; each side is then split the same
    way. Returns the parts (arrays of node indices), the mask itself when no cut qualifies."""
    nodes = np.asarray(nodes, np.int64)
    if max_ncut <= 0 or len(nodes) < 2 * max(min_segments, 1):
        return [nodes]
    graph = sparse.csr_matrix(above[nodes][:, nodes])
    vector = second_eigenvector(graph, eps, solver, dense_below, tol, seed)
    side, _ = foreground(vector, 1.0)  # both sides are kept, so no inversion
    if side.sum() < min_segments or (~side).sum() < min_segments:
        return [nodes]
    if ncut_value(graph, side, eps) > max_ncut:
        return [nodes]
    return (split_recursively(above, nodes[side], max_ncut, min_segments, eps, solver, dense_below, tol, seed)
            + split_recursively(above, nodes[~side], max_ncut, min_segments, eps, solver, dense_below, tol, seed))


def split_masks(above: sparse.csr_matrix, masks: np.ndarray, max_ncut: float, min_segments: int, eps: float,
                **solver) -> tuple[np.ndarray, np.ndarray]:
    """Every mask split by :func:`split_recursively`: (parts (M', S) bool, the index of the mask
    each part came from (M',)). Masks no cut splits come back unchanged, in order."""
    masks = np.asarray(masks, bool)
    parts, parent = [], []
    for index, mask in enumerate(masks):
        for nodes in split_recursively(above, np.flatnonzero(mask), max_ncut, min_segments, eps, **solver):
            part = np.zeros(masks.shape[1], bool)
            part[nodes] = True
            parts.append(part)
            parent.append(index)
    return np.asarray(parts, bool).reshape(-1, masks.shape[1]), np.asarray(parent, np.int64)


def pair_ncut(above: sparse.csr_matrix, first: np.ndarray, second: np.ndarray, eps: float) -> float:
    """NCut(A, B) of two disjoint masks on the graph of their union (W = eps + (1 - eps) B): near
    0 when few edges cross between them, near 1 or above when they are as linked as their insides."""
    nodes = np.flatnonzero(first | second)
    return ncut_value(sparse.csr_matrix(above[nodes][:, nodes]), first[nodes], eps)


def merge_masks(above: sparse.csr_matrix, adjacency_pairs: np.ndarray, masks: np.ndarray, min_ncut: float,
                eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent masks that no boundary separates, joined: while two masks touch (over superpoint
    adjacency) and the NCut value between them on their union's graph exceeds ``min_ncut``, the pair
    with the largest value becomes one mask. The iteration's bipartitions can halve an object whose
    superpoints are all alike when little else is left in the graph; ``split_recursively`` is the
    opposite test. Returns (masks (M', S), index of the first input mask in each)."""
    masks = [np.asarray(m, bool) for m in np.asarray(masks, bool)]
    first = list(range(len(masks)))
    pairs = np.asarray(adjacency_pairs, np.int64).reshape(-1, 2)
    if min_ncut <= 0:
        return np.asarray(masks, bool).reshape(-1, above.shape[0]), np.asarray(first, np.int64)
    while len(masks) > 1:
        owner = np.full(above.shape[0], -1, np.int64)
        for index, mask in enumerate(masks):
            owner[mask] = index
        a, b = owner[pairs[:, 0]], owner[pairs[:, 1]]
        touching = sorted({(min(i, j), max(i, j)) for i, j in zip(a.tolist(), b.tolist()) if i >= 0 and j >= 0 and i != j})
        values = [pair_ncut(above, masks[i], masks[j], eps) for i, j in touching]
        if not values or max(values) <= min_ncut:
            break
        i, j = touching[int(np.argmax(values))]
        masks[i] = masks[i] | masks[j]
        del masks[j], first[j]
    return np.asarray(masks, bool).reshape(-1, above.shape[0]), np.asarray(first, np.int64)


# --------------------------------------------------------------------------------------------
# Background and scores
# --------------------------------------------------------------------------------------------


def spans_scene(candidate: np.ndarray, box_min: np.ndarray, box_max: np.ndarray, scene_min: np.ndarray,
                scene_max: np.ndarray, ratio: float) -> bool:
    """True when the superpoints ``candidate`` span more than ``ratio`` of the scene along both
    horizontal axes (axes 0 and 1 of the boxes' frame): a cut that big is the room, not an object."""
    if len(candidate) == 0:
        return False
    extent = np.nanmax(box_max[candidate, :2], axis=0) - np.nanmin(box_min[candidate, :2], axis=0)
    return bool(np.all(extent > ratio * (scene_max[:2] - scene_min[:2])))


def extent_background(box_min: np.ndarray, box_max: np.ndarray, ratio: float):
    """``is_background`` for masked_ncut: the candidate spans the scene (see spans_scene)."""
    box_min, box_max = np.asarray(box_min, np.float64), np.asarray(box_max, np.float64)
    scene_min, scene_max = np.nanmin(box_min, axis=0), np.nanmax(box_max, axis=0)
    return lambda candidate: spans_scene(candidate, box_min, box_max, scene_min, scene_max, ratio)


def pair_affinity(modalities: list[Modality], pairs: np.ndarray, ranges: list[tuple[float, float]] | None) -> np.ndarray:
    """(E,) the (un-binarised) affinity of ``affinity_rows`` for each superpoint pair."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    numerator = np.zeros(len(pairs))
    denominator = np.zeros(len(pairs))
    for index, m in enumerate(modalities):
        sim = np.einsum("ec,ec->e", m.features[pairs[:, 0]], m.features[pairs[:, 1]]).astype(np.float64)
        if ranges is not None:
            low, high = ranges[index]
            sim = np.clip((sim - low) / max(high - low, 1e-12), 0.0, 1.0)
        present = (m.valid[pairs[:, 0]] & m.valid[pairs[:, 1]]) * m.weight
        numerator += present * sim
        denominator += present
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def boundary_contrast(masks: np.ndarray, pairs: np.ndarray, affinity: np.ndarray) -> np.ndarray:
    """(M,) 1 - mean affinity over the adjacency edges that cross each mask's boundary.

    An object is set off from what touches it (Shi & Malik's premise, measured locally): a mask
    cut along feature discontinuities scores high, one that stops inside an object or spills into
    a neighbour has similar superpoints on both sides of its boundary and scores low. A mask
    without neighbours scores 1.
    """
    masks = np.asarray(masks, bool)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    out = np.ones(len(masks))
    for index, mask in enumerate(masks):
        crossing = mask[pairs[:, 0]] != mask[pairs[:, 1]]
        if crossing.any():
            out[index] = 1.0 - float(affinity[crossing].mean())
    return out.astype(np.float32)


def point_instances(masks: np.ndarray, point_superpoint: np.ndarray) -> np.ndarray:
    """(N,) int32 index of the mask holding each point's superpoint, -1 where none (masks disjoint)."""
    masks = np.asarray(masks, bool)
    superpoint_instance = np.full(masks.shape[1], -1, np.int32)
    for index, mask in enumerate(masks):
        superpoint_instance[mask] = index
    return superpoint_instance[np.asarray(point_superpoint, np.int64)]
