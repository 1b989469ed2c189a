"""BEEP3D: box-supervised teacher-student training with pseudo-masks for overlapping boxes.

Notation of the paper (Yoo et al., 2025, arXiv 2510.12182):
- P^l: points inside exactly one box (label known); P^u: points inside several boxes.
- Teacher = EMA of the student (``pipeline.learning.train.ema``). Its position queries start at N_Q
  farthest-point samples P_fps, which attend to the box centres C: Q_p = softmax(P_fps C^T) C
  (Eq. 5), and are re-projected onto the centres the same way after every decoder layer (Eq. 6).
- rho = sigmoid(Q_c F^T) (Eq. 2): similarity of the teacher's final content queries to the
  (superpoint) features. Queries are matched to boxes by the Hungarian algorithm (Eq. 3), and a
  point of P^u goes to the matched query of highest rho among the boxes that contain it (Eq. 4).
- The student learns the union of those pseudo-masks and the P^l masks (BCE + Dice + class) plus
  the L1 query-consistency loss (Eq. 7) and the masked-feature consistency loss (Eq. 8-10).

``similarity="dot"`` is Eq. 5 literally (dot products of coordinates in metres). With scene
coordinates that are all positive (ScanNet's), the dot product favours the centres farthest from
the origin, so most queries collapse onto a few centres; ``"distance"`` (softmax of minus the
squared distance over a temperature) is the translation-invariant reading and the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.learning.boxes import BACKGROUND, smallest_containing_box
from pipeline.learning.model.net import InstanceNet, NetOutput, SceneTensors
from pipeline.learning.train import losses
from pipeline.learning.train.matching import Matching, MatchWeights, match


# ---------------------------------------------------------------------------------------------
# Query positions: farthest-point samples attending to box centres (Eq. 5-6).


def farthest_point_sample(points: np.ndarray, n_samples: int) -> np.ndarray:
    """Indices of ``n_samples`` points spread by farthest-point sampling (deterministic: starts
    at the point farthest from the centroid). Returns all points when there are fewer."""
    points = np.asarray(points, np.float64)
    n = len(points)
    if n == 0 or n_samples <= 0:
        return np.zeros(0, np.int64)
    if n_samples >= n:
        return np.arange(n, dtype=np.int64)
    chosen = np.empty(n_samples, np.int64)
    chosen[0] = int(np.argmax(((points - points.mean(0)) ** 2).sum(1)))
    distance = ((points - points[chosen[0]]) ** 2).sum(1)
    for i in range(1, n_samples):
        chosen[i] = int(np.argmax(distance))
        distance = np.minimum(distance, ((points - points[chosen[i]]) ** 2).sum(1))
    return chosen


def centre_attention(positions: torch.Tensor, centres: torch.Tensor, similarity: str = "distance",
                     temperature: float = 1.0) -> torch.Tensor:
    """Eq. 5/6: each position becomes the attention-weighted mean of the box centres.

    ``dot``: softmax(P C^T / temperature) C (the paper's formula; temperature 1).
    ``distance``: softmax(-|P - C|^2 / temperature) C.
    """
    if centres.shape[0] == 0:
        return positions
    if similarity == "dot":
        logits = positions @ centres.T / temperature
    elif similarity == "distance":
        logits = -torch.cdist(positions, centres).pow(2) / temperature
    else:
        raise ValueError(f"unknown centre similarity {similarity!r} (dot | distance)")
    return logits.softmax(dim=1) @ centres


def centre_refiner(scene: SceneTensors, centres_m: np.ndarray, similarity: str, temperature: float):
    """Position refiner for the decoder: works in metres, takes and returns normalised coords."""
    device = scene.sp_coords.device
    centres = torch.as_tensor(np.asarray(centres_m, np.float32), device=device)

    def refine(coords: torch.Tensor) -> torch.Tensor:
        metres = scene.denormalise(coords)
        refined = centre_attention(metres, centres.to(metres.dtype), similarity, temperature)
        origin = torch.as_tensor(scene.origin, dtype=refined.dtype, device=device)
        return (refined - origin) / scene.scale

    return refine


def initial_query_coords(scene: SceneTensors, n_queries: int) -> torch.Tensor:
    """(Q, 3) normalised positions of farthest-point samples of the superpoint centroids."""
    index = farthest_point_sample(scene.sp_centroid, n_queries)
    return scene.sp_coords[torch.from_numpy(index).to(scene.sp_coords.device)]


def box_query_coords(scene: SceneTensors, centres_m: np.ndarray) -> torch.Tensor:
    """(B, 3) normalised positions of the box centres: query b asks for the object of box b."""
    coords = scene.normalise(np.asarray(centres_m, np.float64).reshape(-1, 3))
    return torch.as_tensor(coords, dtype=scene.sp_coords.dtype, device=scene.sp_coords.device)


def identity_matching(n_boxes: int) -> Matching:
    return Matching(np.arange(n_boxes, dtype=np.int64), np.arange(n_boxes, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# Box targets, the Eq. 4 assignment, and the pseudo-masks.


@dataclass
class SceneBoxes:
    """A scene's boxes and partition, in the box order of scene.h5."""

    point_box: np.ndarray  # (N,) P^l box, BACKGROUND or AMBIGUOUS
    ambiguous_point: np.ndarray  # (P,) pairs of P^u
    ambiguous_box: np.ndarray  # (P,)
    centre: np.ndarray  # (B, 3) metres (of the un-augmented scene)
    volume: np.ndarray  # (B,)
    class_index: np.ndarray  # (B,) index into the label vocabulary
    labels: list[str] = field(default_factory=list)
    # (N,) bool: inside a box but on a surface continuing outside every box (box_partition's
    # surface_background); None when boxes.h5 has none
    surface_background: np.ndarray | None = None

    @property
    def n_boxes(self) -> int:
        return len(self.centre)


def box_point_fractions(point_box: np.ndarray, extra_point: np.ndarray, extra_box: np.ndarray,
                        point_superpoint: np.ndarray, sp_size: np.ndarray, n_boxes: int) -> np.ndarray:
    """(B, S) fraction of each superpoint's points that belong to each box.

    Points with ``point_box >= 0`` belong to that box; (extra_point, extra_box) pairs add more.
    """
    n_superpoints = len(sp_size)
    counts = np.zeros(n_boxes * n_superpoints, np.float64)
    single = point_box >= 0
    keys = point_box[single].astype(np.int64) * n_superpoints + point_superpoint[single]
    counts += np.bincount(keys, minlength=n_boxes * n_superpoints)
    if len(extra_point):
        keys = extra_box.astype(np.int64) * n_superpoints + point_superpoint[extra_point]
        counts += np.bincount(keys, minlength=n_boxes * n_superpoints)
    return (counts.reshape(n_boxes, n_superpoints) / np.maximum(sp_size, 1)[None]).astype(np.float32)


def assign_ambiguous(box_scores: np.ndarray, boxes: SceneBoxes, point_superpoint: np.ndarray,
                     min_margin: float = 0.0) -> np.ndarray:
    """Eq. 4: (N,) int32 box per point. P^l keep their box, background stays BACKGROUND, and each
    P^u point takes the containing box whose matched query scores its superpoint highest.

    ``box_scores`` (B, S): rho of the query matched to each box (-inf: the box has no query).
    Ties go to the smaller box. A point none of whose boxes has a query takes the smallest one.
    ``min_margin`` > 0 trusts the teacher only where it is sure: a point whose best rho beats its
    runner-up by less than this takes its smallest containing box (the rule) instead.
    """
    assignment = np.where(boxes.point_box >= 0, boxes.point_box, BACKGROUND).astype(np.int32)
    if len(boxes.ambiguous_point) == 0:
        return assignment
    points, candidates = boxes.ambiguous_point, boxes.ambiguous_box
    score = box_scores[candidates, point_superpoint[points]].astype(np.float64)
    score = np.where(np.isfinite(score), score, -np.inf)
    # Best pair per point: sort by (point, -score, volume, box index) and keep each point's first.
    order = np.lexsort((candidates, boxes.volume[candidates], -score, points))
    sorted_points, sorted_boxes, sorted_score = points[order], candidates[order], score[order]
    first = np.r_[True, sorted_points[1:] != sorted_points[:-1]]
    chosen = sorted_boxes[first]
    if min_margin > 0:
        # Every P^u point has >= 2 pairs, so the entry after each first one is its runner-up.
        first_index = np.flatnonzero(first)
        margin = sorted_score[first_index] - sorted_score[first_index + 1]
        smallest = smallest_containing_box(points, candidates, boxes.volume)
        unsure = ~(margin >= min_margin)  # NaN (two -inf scores) counts as unsure
        chosen = np.where(unsure, smallest[sorted_points[first]], chosen)
    assignment[sorted_points[first]] = chosen
    return assignment


def rescue_empty_boxes(assignment: np.ndarray, boxes: SceneBoxes, min_fraction: float) -> tuple[np.ndarray, list[int]]:
    """Give back its smallest-box points to any box the assignment left with fewer than
    ``min_fraction`` of the points it contains (typically a box nested inside another, all of
    whose points are ambiguous: BEEP3D's known failure case). Returns (assignment, rescued boxes)."""
    n_boxes = boxes.n_boxes
    if n_boxes == 0 or min_fraction <= 0 or len(boxes.ambiguous_point) == 0:
        return assignment, []
    contained = np.bincount(boxes.point_box[boxes.point_box >= 0], minlength=n_boxes) + np.bincount(
        boxes.ambiguous_box, minlength=n_boxes)
    kept = np.bincount(assignment[assignment >= 0], minlength=n_boxes)
    starving = np.flatnonzero((contained > 0) & (kept < min_fraction * contained))
    if len(starving) == 0:
        return assignment, []
    smallest = smallest_containing_box(boxes.ambiguous_point, boxes.ambiguous_box, boxes.volume)
    smallest_point = np.flatnonzero(smallest >= 0)
    smallest_box = smallest[smallest_point]
    result = assignment.copy()
    rescued = []
    for box in starving:
        take = smallest_point[smallest_box == box]
        if len(take):
            result[take] = box
            rescued.append(int(box))
    return result, rescued


# ---------------------------------------------------------------------------------------------
# The teacher's pseudo-masks and the student's losses.


@dataclass(frozen=True)
class Beep3DConfig:
    ema_decay: float = 0.99  # alpha
    centre_similarity: str = "distance"  # dot (Eq. 5 literally) | distance
    centre_temperature: float = 0.05  # m^2 for distance, 1 for the paper's dot product
    refine_every_layer: bool = True  # Eq. 6
    rescue_min_fraction: float = 0.5  # see rescue_empty_boxes; 0 turns the rescue off
    min_margin: float = 0.0  # Eq. 4 only where rho's best beats its runner-up by this; else smallest box
    # fps (the paper): farthest-point queries, refined toward the centres, Hungarian-matched to boxes.
    # boxes: one query per box placed at its centre and paired with it, for teacher and student alike.
    queries: str = "fps"
    # Train on box targets without box_partition's surface background (walls and floors running into
    # a box from outside every box), so the masks learn the objects rather than box membership.
    targets_without_surface_background: bool = False
    match: MatchWeights = MatchWeights(cls=0.5, bce=1.0, dice=1.0, centre=1.0)


@dataclass
class TeacherResult:
    assignment: np.ndarray  # (N,) box per point after Eq. 4 (and the rescue)
    targets: torch.Tensor  # (B, S) pseudo-mask fractions
    box_scores: np.ndarray  # (B, S) rho of the matched query per box (-inf: unmatched)
    matching: Matching  # teacher queries <-> boxes
    output: NetOutput
    query_score: np.ndarray  # (B,) objectness (1 - p(no object)) of each box's query (0: unmatched)
    rescued: list[int]


@torch.no_grad()
def teacher_pseudo_masks(teacher: InstanceNet, scene: SceneTensors, boxes: SceneBoxes, box_fractions: torch.Tensor,
                         centres_m: np.ndarray, config: Beep3DConfig, query_coords: torch.Tensor | None = None) -> TeacherResult:
    """Run the teacher with centre-refined queries, match queries to boxes, assign P^u (Eq. 2-6)."""
    if config.queries == "boxes":
        output = teacher(scene, box_query_coords(scene, centres_m))  # the queries already sit at the centres
    else:
        if query_coords is None:
            query_coords = initial_query_coords(scene, teacher.config.n_queries)
        refine = centre_refiner(scene, centres_m, config.centre_similarity, config.centre_temperature)
        if config.refine_every_layer:
            output = teacher(scene, query_coords, refine)
        else:
            output = teacher(scene, refine(query_coords))
    last = output.last
    classes = torch.as_tensor(boxes.class_index, dtype=torch.long, device=last.mask_logits.device)
    centres_norm = torch.as_tensor(scene.normalise(centres_m), dtype=last.coords.dtype, device=last.coords.device)
    if config.queries == "boxes":
        matching = identity_matching(boxes.n_boxes)
    else:
        matching = match(last.mask_logits, last.class_logits, box_fractions, classes, config.match, last.coords,
                         centres_norm)
    box_scores = np.full((boxes.n_boxes, scene.n_superpoints), -np.inf, np.float32)
    box_scores[matching.target] = last.mask_logits[torch.from_numpy(matching.query)].sigmoid().cpu().numpy()
    point_superpoint = scene.point_superpoint.cpu().numpy()
    assignment = assign_ambiguous(box_scores, boxes, point_superpoint, config.min_margin)
    assignment, rescued = rescue_empty_boxes(assignment, boxes, config.rescue_min_fraction)
    sp_size = scene.sp_size.cpu().numpy()
    targets = box_point_fractions(assignment, np.zeros(0, np.int64), np.zeros(0, np.int64), point_superpoint, sp_size, boxes.n_boxes)
    objectness = 1 - last.class_logits.softmax(-1)[:, -1]
    query_score = np.zeros(boxes.n_boxes, np.float32)
    query_score[matching.target] = objectness[torch.from_numpy(matching.query)].cpu().numpy()
    return TeacherResult(assignment, torch.from_numpy(targets).to(last.mask_logits.device), box_scores, matching, output,
                         query_score, rescued)


@dataclass(frozen=True)
class LossWeights:
    bce: float = 1.0
    dice: float = 1.0
    cls: float = 0.5
    query: float = 0.5  # BEEP3D L_q
    feature: float = 0.5  # BEEP3D L_f
    # L_f's form and features: "paper" (Eq. 8-10: summed squared L2 over boxes, on the backbone's point
    # features) | "mean_abs" (mean absolute difference on the decoder's mask features)
    feature_form: str = "paper"
    no_object: float = 0.1  # weight of the "no object" class in the class loss
    area: float = 0.0  # LESS area regularisation (off by default)
    contrastive: float = 0.0  # LESS point-to-point contrast (off by default)
    contrastive_temperature: float = 0.1
    aux_layers: bool = True  # supervise every decoder layer, not only the last


def mask_set_losses(output: NetOutput, targets: torch.Tensor, classes: torch.Tensor, sp_size: torch.Tensor,
                    weights: LossWeights, match_weights: MatchWeights, keep_fn=None,
                    fixed: Matching | None = None) -> tuple[dict, list[Matching]]:
    """BCE + Dice + class loss of every supervised layer against target masks (K, S).

    ``keep_fn(layer_output, matching) -> (Q,) bool`` implements DropLoss when given. ``fixed``
    pairs queries with targets once for all layers instead of Hungarian matching per layer.
    Returns the weighted terms (averaged over layers) and each layer's matching.
    """
    layers = output.layers if weights.aux_layers else output.layers[-1:]
    totals = {"bce": 0.0, "dice": 0.0, "cls": 0.0}
    matchings = []
    for layer in layers:
        m = fixed if fixed is not None else match(layer.mask_logits, layer.class_logits, targets, classes, match_weights)
        matchings.append(m)
        q = torch.from_numpy(m.query).to(targets.device)
        t = torch.from_numpy(m.target).to(targets.device)
        totals["bce"] = totals["bce"] + losses.mask_bce_loss(layer.mask_logits[q], targets[t])
        totals["dice"] = totals["dice"] + losses.dice_loss(layer.mask_logits[q], targets[t])
        keep = keep_fn(layer, m) if keep_fn is not None else None
        totals["cls"] = totals["cls"] + losses.classification_loss(layer.class_logits, q, classes[t], weights.no_object, keep)
    scale = 1.0 / len(layers)
    result = {
        "bce": weights.bce * totals["bce"] * scale,
        "dice": weights.dice * totals["dice"] * scale,
        "cls": weights.cls * totals["cls"] * scale,
    }
    last = output.last
    if weights.area:
        result["area"] = weights.area * losses.area_loss(last.mask_logits)
    if weights.contrastive:
        labels = torch.where(targets.max(0).values > 0.5, targets.argmax(0), torch.full_like(targets.argmax(0), -1)) \
            if targets.shape[0] else torch.full((output.mask_features.shape[0],), -1, dtype=torch.long, device=targets.device)
        result["contrastive"] = weights.contrastive * losses.point_contrastive_loss(
            output.mask_features, labels, weights.contrastive_temperature)
    return result, matchings


def beep3d_losses(student_out: NetOutput, teacher: TeacherResult, boxes: SceneBoxes, scene: SceneTensors,
                  weights: LossWeights, match_weights: MatchWeights, box_queries: bool = False) -> dict:
    """The student's loss terms against the teacher's pseudo-masks (boxes with no point are left out).

    ``box_queries``: the student's query b sits at box b's centre and learns that box's mask."""
    device = student_out.last.mask_logits.device
    present = np.flatnonzero(teacher.targets.sum(1).cpu().numpy() > 0)
    targets = teacher.targets[torch.from_numpy(present).to(device)]
    classes = torch.as_tensor(boxes.class_index[present], dtype=torch.long, device=device)
    fixed = Matching(present.astype(np.int64), np.arange(len(present), dtype=np.int64)) if box_queries else None
    terms, matchings = mask_set_losses(student_out, targets, classes, scene.sp_size, weights, match_weights,
                                       fixed=fixed)
    # Consistency terms on the last layer, for boxes matched by both student and teacher.
    student_match = matchings[-1]
    student_query = np.full(boxes.n_boxes, -1, np.int64)
    student_query[present[student_match.target]] = student_match.query
    teacher_query = teacher.matching.query_of_target(boxes.n_boxes)
    both = np.flatnonzero((student_query >= 0) & (teacher_query >= 0))
    s_idx = torch.from_numpy(student_query[both]).to(device)
    t_idx = torch.from_numpy(teacher_query[both]).to(device)
    last = student_out.last
    if weights.query:
        terms["query"] = weights.query * losses.query_consistency_loss(last.content[s_idx], teacher.output.last.content[t_idx])
    if weights.feature:
        box_idx = torch.from_numpy(both).to(device)
        paper = weights.feature_form == "paper"
        student_features = student_out.backbone_features if paper else student_out.mask_features
        teacher_features = teacher.output.backbone_features if paper else teacher.output.mask_features
        terms["feature"] = weights.feature * losses.masked_feature_consistency_loss(
            student_features, teacher_features, last.mask_logits[s_idx].sigmoid(), teacher.targets[box_idx],
            scene.sp_size, weights.feature_form)
    return terms
