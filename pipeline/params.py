"""Stage parameters: one typed definition per stage, the only source of their defaults.

Each stage's parameters are a frozen dataclass with keyword-only fields. ``from_dict`` overlays a
config section (or a ``--params`` JSON object) on the defaults and refuses unknown keys (naming the
stage and the key, suggesting the closest valid one) and values of the wrong type. ``config.yaml``
and the schema's defaults are pinned to these classes by ``tests/test_params.py``.

Nested sections (``keyframes``, ``handcrafted``, a backend's ``sam`` ...) stay mappings: their keys
are checked against the section's defaults, or, for a sparse section, against the backend's own
defaults (``section(..., keys="module:NAME")``, imported only when checked). ``to_dict`` gives the
mapping written to artifacts' ``params`` attribute (and hashed for resume), as before.

This module imports nothing heavy: the CLI, the Snakefile and light stages import it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

from pipeline.errors import InputError


class ParamsError(InputError):
    """A stage parameter that does not exist or has a value of the wrong type."""

    def __init__(self, problem: str):
        super().__init__(None, problem)


def _did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(where: str, key: str, known) -> ParamsError:
    return ParamsError(f"unknown {where} parameter {key!r}{_did_you_mean(key, known)}; known: {sorted(known)}")


def section(default: dict, keys: str | None = None):
    """A nested mapping field whose default is ``default``; an override is merged key by key.

    ``keys``: "module:NAME" of the backend defaults whose keys a sparse section may use (the
    section then lists only some of them); None: exactly the keys of ``default``.
    """
    return field(default_factory=lambda: copy.deepcopy(default), metadata={"section": True, "keys": keys})


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, getattr(origin or hint, "__name__", str(hint)))


def _matches(value, hint) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # a bool is an int to Python, but true for a count is a mistake
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # YAML writes 1 for 1.0
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return not args or all(_matches(item, args[0]) for item in value)
    if origin is dict or hint is dict:
        return isinstance(value, Mapping)
    return isinstance(value, hint)


def _like(value, default) -> bool:
    """Whether a section value has the type of the section's default (None defaults take anything)."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, type(default))


def _known_keys(spec: str) -> dict:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, kw_only=True)
class StageParams:
    """Base of every stage's parameters (see the module docstring)."""

    STAGE: ClassVar[str] = ""

    @classmethod
    def defaults(cls) -> dict:
        return cls().to_dict()

    @classmethod
    def from_dict(cls, values: Mapping | StageParams | None = None):
        """The defaults with ``values`` (a config section) on top; unknown keys and wrong types are errors."""
        if isinstance(values, cls):
            return values
        if values is None:
            values = {}
        if isinstance(values, StageParams):
            values = values.to_dict()
        if not isinstance(values, Mapping):
            raise ParamsError(f"{cls.STAGE} parameters must be a mapping, got {values!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            if key not in fields:
                raise unknown_key(cls.STAGE, key, fields)
            where = f"{cls.STAGE}.{key}"
            if fields[key].metadata.get("section"):
                value = cls._merge_section(where, fields[key], value)
            elif not _matches(value, hints[key]):
                raise ParamsError(f"{where} must be {_describe(hints[key])}, got {value!r}")
            kwargs[key] = value
        return cls(**kwargs)

    @staticmethod
    def _merge_section(where: str, spec: dataclasses.Field, value) -> dict:
        default = spec.default_factory()
        if value is None:  # YAML's empty section
            value = {}
        if not isinstance(value, Mapping):
            raise ParamsError(f"{where} must be a mapping, got {value!r}")
        known = _known_keys(spec.metadata["keys"]) if spec.metadata["keys"] else default
        for key, item in value.items():
            if key not in known:
                raise unknown_key(where, key, known)
            if not _like(item, known[key]):
                raise ParamsError(f"{where}.{key} must be like {known[key]!r}, got {item!r}")
        return {**default, **copy.deepcopy(dict(value))}

    def to_dict(self) -> dict:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes):
        """A copy with ``changes`` checked like a config section."""
        return type(self).from_dict({**self.to_dict(), **changes})


# ----------------------------------------------------------------------------------------------
# The stages, in DAG order. Comments say what a value means; config.yaml repeats them for users.


@dataclass(frozen=True, kw_only=True)
class IngestParams(StageParams):
    STAGE: ClassVar[str] = "ingest"
    verify_images: Literal["all", "first"] = "all"  # all: decode every image (JPEG and PNG); first: the first frame's
    box_ignore_labels: list[str] = field(default_factory=lambda: ["wall", "floor", "ceiling"])  # GT instances without a box
    normal_neighbours: int = 16  # k for PCA normals of point clouds without normals
    # Ground truth never supervises unless asked: true builds "oracle boxes" from the GT instances.
    boxes_from_ground_truth: bool = False
    label_map: str | None = None  # ScanNet's scannetv2-labels.combined.tsv: aggregation.json raw names -> NYU40


@dataclass(frozen=True, kw_only=True)
class FuseMeshParams(StageParams):
    STAGE: ClassVar[str] = "fuse_mesh"
    voxel: float = 0.02  # metres
    trunc: float = 0.06  # truncation distance of the signed distance field, metres (about 3 voxels)
    every: int = 1  # integrate every k-th frame
    max_depth: float = 3.0  # metres; farther readings are noisy on Kinect-style sensors and dropped
    block_voxels: int = 64  # voxels per side of one volume tile
    plan_stride: int = 4  # pixel stride when back-projecting depth to find occupied blocks
    max_voxels: int = 200_000_000  # refuse to allocate more (about 32 bytes each in Open3D)


@dataclass(frozen=True, kw_only=True)
class SuperpointsParams(StageParams):
    STAGE: ClassVar[str] = "superpoints"
    k_thresh: float = 0.01  # Felzenszwalb constant k: larger -> bigger segments
    seg_min_verts: int = 20  # segments smaller than this are merged into a neighbour
    mode: Literal["auto", "mesh", "points"] = "auto"  # mesh (needs faces), points (kNN graph), auto: mesh when faces exist
    knn: int = 10  # neighbours per point in point-cloud mode
    color_weight: float = 0.0  # point-cloud mode: weight of the RGB difference term (0 = off)
    # Superpoints with points this close (metres) are adjacent even without a graph edge, so
    # touching but separate meshes (CAD, synthetic furniture parts) connect; 0 = graph edges only.
    adjacency_radius: float = 0.03


HANDCRAFTED_2D = {
    "short_side": 240,  # images are downscaled so their shorter side has this many pixels
    "window_radius": 3,  # r of the (2r+1)^2 window for local statistics (in downscaled pixels)
    "color_weight": 1.0,
    "local_mean_weight": 0.5,
    "local_std_weight": 1.0,
    "bandwidth": 20.0,  # Gaussian kernel width in (weighted) Lab units
    "n_features": 64,
    "seed": 0,
    "point_neighbours": 16,  # point clouds: the local window is this many nearest points (itself included)
    # Point clouds: random Fourier features of the points' colours. Superpoint means are summed a
    # chunk of points at a time, so the width costs time, not memory; with 64 the NCut masks of
    # scene0000_00 swung from AP50 6.9 to 20.8 with the projection's seed (see features/fourier.py).
    "point_n_features": 2048,
}
DINO = {
    "checkpoint": "",  # path to dino_deitsmall8_pretrain.pth (required for this backend)
    "arch": "vit_small_patch8_224",
    "arch_overrides": {},  # timm keyword overrides (tests build tiny models: embed_dim, depth, num_heads, img_size)
    "layer": 10,  # 0-based block whose facet is read
    "facet": "key",  # key | query | value | token
    "stride": 4,  # patch-embedding stride (8 = no overlap)
    "short_side": 192,
}


@dataclass(frozen=True, kw_only=True)
class Features2dParams(StageParams):
    STAGE: ClassVar[str] = "features_2d"
    backend: Literal["handcrafted", "dino"] = "handcrafted"  # handcrafted: weight-free colour baseline
    frame_step: int = 20  # every k-th frame with a valid pose (UnScene3D: 20)
    depth_tolerance: float = 0.05  # metres; |z_point - depth| below this counts as visible
    depth_scale: float = 1000.0  # depth PNG units per metre
    batch_size: int = 4  # frames per batch
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every: int = 50  # frames between resume saves of the running means (0 = never)
    point_colors: bool = True  # scenes without frames: colour features from the points' colours
    handcrafted: dict = section(HANDCRAFTED_2D)
    dino: dict = section(DINO)


HANDCRAFTED_3D = {
    "fpfh_radius": 0.15,  # metres; neighbourhood of the FPFH histograms
    "fpfh_max_nn": 60,
    "normal_weight": 0.0,  # normals are unit vectors: opposite normals differ by 2
    "fpfh_weight": 0.0,  # FPFH histograms normalised to sum 1 per angle (3 x 11 bins)
    "height_weight": 1.0,  # per metre
    "position_weight": 1.0,  # per metre, all three axes
    "up_axis": [0.0, 0.0, 1.0],  # ScanNet scenes are z-up
    "floor_percentile": 1.0,  # the floor height is this percentile of heights (robust to outliers)
    "bandwidth": 0.6,  # Gaussian kernel width in weighted descriptor units (metres for position)
    "n_features": 2048,  # random Fourier features; summed per superpoint a chunk at a time (see point_n_features)
    "seed": 0,
}
CSC = {
    "checkpoint": "",  # a converted or released CSC checkpoint (required for this backend)
    "feature_level": 1,  # decoder stride whose features are used: 1 (final layer), 2, 4, 8 or 16
}
STRUCTURE = {
    "enabled": True,
    "margin": 0.05,  # metres beyond the plane before a point counts (sensor noise, wall thickness)
    "max_beyond": 0.02,  # largest fraction of the scan's points beyond a bounding plane (window views, noise)
    "max_residual": 0.05,  # metres: RMS plane residual above which a superpoint is not planar
    "sample_points": 20000,  # the beyond-fraction is counted on at most this many points (a fixed stride)
    "up_axis": [0.0, 0.0, 1.0],  # superpoint boxes are stored in a frame whose third axis is this
}


@dataclass(frozen=True, kw_only=True)
class Features3dParams(StageParams):
    STAGE: ClassVar[str] = "features_3d"
    backend: Literal["handcrafted", "csc"] = "handcrafted"  # handcrafted: weight-free geometry baseline
    device: str = "auto"
    handcrafted: dict = section(HANDCRAFTED_3D)
    csc: dict = section(CSC)
    structure: dict = section(STRUCTURE)  # room structure (floor, walls, ceiling) for NCut


@dataclass(frozen=True, kw_only=True)
class NcutParams(StageParams):
    STAGE: ClassVar[str] = "ncut"
    modality: Literal["auto", "both", "2d", "3d"] = "auto"  # auto: both when 2D features exist, else 3d
    tau_cut_both: float = 0.65
    tau_cut_3d: float = 0.55
    tau_cut_2d: float = 0.65
    weight_2d: float = 0.5  # share of the 2D affinity in the average (UnScene3D: equal weights)
    affinity_normalization: Literal["minmax", "none"] = "minmax"
    eps: float = 1e-5
    max_instances: int = 20
    max_iterations: int = 100
    invert_fraction: float = 0.8
    component: Literal["seed", "largest", "mean"] = "seed"  # which foreground component becomes the mask (seed: paper)
    min_segments: int = 2
    max_overlap: float = 0.5
    masking: Literal["remove", "eps"] = "remove"
    structure: Literal["mask", "keep"] = "mask"  # mask: room structure flagged by features_3d leaves the graph first
    background: Literal["extent", "none"] = "extent"  # extent: a cut spanning the room is background, not a mask
    max_extent_ratio: float = 0.8  # ... when it spans more than this of the scene along both horizontal axes
    score: Literal["contrast", "ncut", "uniform"] = "contrast"  # boundary contrast | 1 - NCut / 2 | every mask 1
    # Shi & Malik's recursive two-way cut of every accepted mask while NCut(A, B) <= this (0 = off, UnScene3D)
    split_max_ncut: float = 0.25
    # Touching masks joined while NCut(A, B) on their union's graph exceeds this (0 = off, UnScene3D)
    merge_min_ncut: float = 0.5
    solver: Literal["auto", "lanczos", "dense"] = "auto"  # auto: dense below dense_below nodes, else lanczos
    dense_below: int = 64
    solver_tol: float = 1e-7
    seed: int = 0


KEYFRAMES = {
    "mode": "stride",  # stride | motion
    "stride": 10,  # stride mode: every k-th valid frame
    "min_translation": 0.3,  # motion mode: metres moved since the last keyframe
    "min_rotation_deg": 20.0,  # motion mode: degrees turned since the last keyframe
    "max_gap": 0,  # motion mode: force a keyframe after this many valid frames (0 = never)
}
FELZENSZWALB_MASKS = {
    "scale": 200.0,  # larger -> larger segments
    "sigma": 0.8,  # Gaussian pre-smoothing (pixels)
    "min_size": 200,  # segments smaller than this are merged into a neighbour (pixels)
    "min_area": 100,  # segments smaller than this after masking out missing depth are dropped
    "require_depth": True,  # drop pixels without depth from the masks
}
ORACLE_MASKS = {
    "p_split": 0.0,  # probability that an object is split into parts in a frame
    "p_merge": 0.0,  # probability that an object is merged with a touching neighbour in a frame
    "max_parts": 2,  # a split makes 2..max_parts parts
    "min_area": 50,  # masks (objects and parts) smaller than this (pixels) are dropped
    "seed": 0,
}
SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_l.yaml"


@dataclass(frozen=True, kw_only=True)
class KeyframeMasksParams(StageParams):
    STAGE: ClassVar[str] = "keyframe_masks"
    generator: Literal["sam", "sam2", "felzenszwalb", "oracle"] = "felzenszwalb"
    device: str = "auto"  # torch device for learned generators (auto: cuda if available)
    image_scale: float = 1.0  # working resolution = depth resolution x this
    keyframes: dict = section(KEYFRAMES)
    min_mask_area: int = 100  # pixels; smaller masks are dropped
    tau_contain: float = 0.8  # a mask this much inside another is redundant
    containment_keep: Literal["larger", "smaller", "score"] = "larger"  # which of a redundant pair survives
    max_masks_per_frame: int = 200  # cap after filtering (0 = none); the preferred masks are kept
    checkpoint_every: int = 10  # keyframes between resume saves (0 = never)
    # Sparse: the generators' other settings keep their own defaults.
    sam: dict = section({"model_type": "vit_h", "checkpoint": None}, keys="pipeline.tracking.masks2d.sam:DEFAULT_PARAMS")
    sam2: dict = section({"model_config": SAM2_CONFIG, "checkpoint": None}, keys="pipeline.tracking.masks2d.sam2_amg:DEFAULT_PARAMS")
    felzenszwalb: dict = section(FELZENSZWALB_MASKS)
    oracle: dict = section(ORACLE_MASKS)


REPROJECTION = {
    "depth_tolerance": 0.05,  # metres: occlusion test, absolute part
    "relative_tolerance": 0.03,  # occlusion test, fraction of the measured depth
    "voxel_size": 0.02,  # metres: cell of the label memory
    "memory": True,  # look up pixels the previous frame did not see in the voxel memory
    "memory_search": 1,  # 1: an unobserved voxel borrows its face-neighbours' label; 0: exact voxel only
    "memory_pixel_stride": 0,  # write every n-th pixel (each way) to the memory; 0 = auto (1..4)
}


@dataclass(frozen=True, kw_only=True)
class TrackParams(StageParams):
    STAGE: ClassVar[str] = "track"
    tracker: Literal["reprojection", "sam2"] = "reprojection"
    device: str = "auto"
    frame_stride: int = 1  # track every n-th valid frame (keyframes are always tracked)
    tau_iou: float = 0.5  # IoU for a new keyframe mask to match a propagated object
    tau_dorm: int = 30  # tracked frames an object may stay unseen before it is terminated
    tau_contain: float = 0.8  # a new mask this much covered by tracked objects is redundant
    max_objects: int = 500  # cap on live (Active + Dormant) objects; more are refused and logged
    min_visible_pixels: int = 20  # an object with fewer pixels in a frame is not seen there
    min_new_pixels: int = 20  # a new object needs at least this many uncovered pixels
    refresh: Literal["correct", "extend", "replace"] = "correct"  # how a matched keyframe mask refreshes its object
    confirm_hits: int = 2  # keyframe matches before a new object is confirmed (1 = at creation, as in the paper)
    checkpoint_every: int = 25  # steps between resume saves (0 = never)
    reprojection: dict = section(REPROJECTION)
    # Sparse: sam2_tracker's other settings (offloading, JPEG quality) keep their own defaults.
    sam2: dict = section({"model_config": SAM2_CONFIG, "checkpoint": None, "window": 60, "max_anchor_frames": 8},
                         keys="pipeline.tracking.sam2_tracker:DEFAULT_PARAMS")


@dataclass(frozen=True, kw_only=True)
class LiftParams(StageParams):
    STAGE: ClassVar[str] = "lift"
    frame_stride: int = 1  # vote with every n-th tracked frame (keyframes always vote)
    depth_tolerance: float = 0.05  # metres: occlusion test, absolute part
    relative_tolerance: float = 0.03  # occlusion test, fraction of the measured depth
    min_confidence: float = 0.3  # a superpoint's winning object needs this share of its observations
    min_observations: int = 1  # a superpoint needs this many point observations to be labelled
    min_instance_points: int = 20  # smaller 3D instances are dropped
    per_view: Literal["keyframes", "all", "none"] = "keyframes"  # per-view masks for keyframes | every voting frame | none
    raw_min_points: int = 20  # raw per-view masks observed on fewer points are dropped (no shape to learn)


@dataclass(frozen=True, kw_only=True)
class BoxPartitionParams(StageParams):
    STAGE: ClassVar[str] = "box_partition"
    chunk: int = 65536  # points per membership test (bounds the (chunk, B, 3) temporaries)
    containment_tolerance: float = 0.0  # metres: a box counts as inside another if it sticks out at most this much
    # Surfaces that enter a box from outside every box (wall, floor, door jamb) are background there
    # (pipeline.learning.box_background); "none" keeps every point inside a box.
    surface_background: Literal["planes", "none"] = "planes"
    background_shell: float = 0.1  # metres around a box searched for outside surfaces
    background_tolerance: float = 0.02  # metres from a plane that still count as on it
    background_min_support: int = 30  # outside points a plane needs
    background_link: float = 0.1  # metres between plane points linking a box's points to the outside
    background_max_share: float = 0.5  # a box never loses more than this share of its points to it


@dataclass(frozen=True, kw_only=True)
class PredictParams(StageParams):
    STAGE: ClassVar[str] = "predict"
    model: Literal["auto", "teacher", "student"] = "auto"  # auto: box -> teacher, unsupervised -> student
    score_threshold: float = 0.3  # unsupervised: masks scored lower are dropped
    mask_threshold: float = 0.5  # probability above which a superpoint is in a mask
    nms_iou: float = 0.5  # unsupervised: IoU above which the lower-scored mask is suppressed
    min_points: int = 30  # unsupervised: smaller instances are dropped
    keep_inputs: bool = True  # unsupervised: the input masks M^0 stay, scored by the model; it adds novel masks
    # unsupervised: a predicted mask is new when its IoU with every input mask, and the share of it
    # they cover, are below this
    novel_iou: float = 0.5
    input_scores: Literal["own", "model"] = "own"  # unsupervised: input masks keep their own scores or the model's
    # box mode: every box instance scores 1 (one) or the share of the box's points it keeps (kept_share)
    box_scores: Literal["one", "kept_share"] = "one"
    device: str = "auto"


@dataclass(frozen=True, kw_only=True)
class EvaluateParams(StageParams):
    STAGE: ClassVar[str] = "evaluate"
    min_region_size: int = 100  # GT instances with fewer points are ignored (ScanNet benchmark rule)
    ignore_labels: list[str] = field(default_factory=lambda: ["wall", "floor", "ceiling"])
    gt_classes: Literal["auto", "scannet18", "all_objects"] = "auto"


@dataclass(frozen=True, kw_only=True)
class PicturesParams(StageParams):
    STAGE: ClassVar[str] = "pictures"
    views: int = 3  # camera views drawn per scene


@dataclass(frozen=True, kw_only=True)
class ExportParams(StageParams):
    STAGE: ClassVar[str] = "export"
    class_map: dict = field(default_factory=dict)  # box label -> NYU40 name, on top of the built-in map
    other_class: str | None = "otherfurniture"  # class of NYU40 classes outside the 18; None = keep them


# Every stage with a typed definition. `train` keeps its own (pipeline/learning/train/config.py: presets
# and nested dataclasses, strict); `synth` specs are checked by pipeline/synth.
STAGES: dict[str, type[StageParams]] = {
    cls.STAGE: cls for cls in (IngestParams, FuseMeshParams, SuperpointsParams, Features2dParams, Features3dParams,
                               NcutParams, KeyframeMasksParams, TrackParams, LiftParams, BoxPartitionParams,
                               PredictParams, EvaluateParams, PicturesParams, ExportParams)
}


def stage_params(stage: str, values: Mapping | None = None) -> StageParams:
    """The typed parameters of ``stage`` from a config section."""
    return STAGES[stage].from_dict(values)
