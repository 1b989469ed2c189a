"""Procedural indoor rooms: furniture made of boxes (and cups made of cylinders), one instance each.

World frame as in ScanNet: metres, z up, the floor is z = 0 and the room spans
[0, size_x] x [0, size_y]. Furniture is built in a local frame (centred on the origin, front
facing +y, standing on z = 0) and placed by quarter turns about z plus a translation, so every part
stays an axis-aligned box. Placement rejects candidates whose parts overlap another object's parts
with positive volume, so solids may touch but never interpenetrate, and ground truth stays
unambiguous. Each room is guaranteed to contain the box relations that box-supervised methods must
handle: an object fully inside another object's box (an item on a shelf level), boxes that overlap
(a chair tucked under a table) and objects resting on others (items on a table top).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from pipeline.scene.geometry import instance_boxes
from pipeline.synth import texture
from pipeline.synth.mesh import box_surface, cylinder_surface, plane_surface

STRUCTURE_LABELS = ("floor", "wall")


@dataclass(frozen=True)
class RoomParams:
    """What a room contains and how finely it is meshed (lengths in metres)."""

    room_size: tuple[float, float, float] | None = None  # (x, y, height); None: drawn from the ranges below
    room_size_min: tuple[float, float, float] = (3.8, 3.2, 2.4)
    room_size_max: tuple[float, float, float] = (4.6, 3.9, 2.6)
    n_tables: int = 2
    n_chairs: int = 5
    n_cabinets: int = 2
    n_shelves: int = 1
    n_table_objects: int = 4  # boxes and cups resting on tables
    n_shelf_objects: int = 3  # boxes and books standing on shelf levels (inside the shelf's box)
    spacing: float = 0.03  # vertex spacing on furniture and small objects
    structure_spacing: float = 0.06  # floor and walls: coarser, like decimated scan meshes on flat areas
    segment_size: float = 0.5  # ground-truth segments are patches of at most this size per part

    def validate(self) -> None:
        needed = {"n_tables": self.n_tables, "n_chairs": self.n_chairs, "n_shelves": self.n_shelves,
                  "n_table_objects": self.n_table_objects, "n_shelf_objects": self.n_shelf_objects}
        for name, value in needed.items():
            if value < 1:
                # Without these the guaranteed box relations (inside / overlapping / resting) can't exist.
                raise ValueError(f"{name} must be at least 1 (got {value})")
        if self.n_cabinets < 0:
            raise ValueError(f"n_cabinets must be >= 0 (got {self.n_cabinets})")
        for name in ("spacing", "structure_spacing", "segment_size"):
            if not 0.005 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0.005, 1] m (got {getattr(self, name)})")


PRESETS: dict[str, RoomParams] = {
    "default": RoomParams(),  # ~50k vertices
    "tiny": RoomParams(
        room_size_min=(3.0, 2.6, 2.3), room_size_max=(3.3, 2.9, 2.4), n_tables=1, n_chairs=2,
        n_cabinets=1, n_shelves=1, n_table_objects=2, n_shelf_objects=2, spacing=0.05,
        structure_spacing=0.1,
    ),
}


def room_params(preset: str = "default", **overrides) -> RoomParams:
    """A preset's parameters with some replaced; raises ValueError on unknown names or bad values."""
    if preset not in PRESETS:
        raise ValueError(f"unknown room preset {preset!r}; choose one of {sorted(PRESETS)}")
    unknown = set(overrides) - set(RoomParams.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown room parameter(s) {sorted(unknown)}")
    for key in ("room_size", "room_size_min", "room_size_max"):
        if overrides.get(key) is not None:
            overrides[key] = tuple(float(x) for x in overrides[key])
    params = replace(PRESETS[preset], **overrides)
    params.validate()
    return params


@dataclass(frozen=True)
class Part:
    """One solid of an instance, by its axis-aligned bounds in world coordinates.

    kind: "box" (closed box), "cylinder" (vertical, inscribed in the bounds' xy square) or
    "plane" (a rectangle of zero thickness: floor and walls). ``open_bottom`` leaves out the
    underside of a solid that stands on something, which no camera can see.
    """

    instance: int
    kind: str
    box_min: tuple[float, float, float]
    box_max: tuple[float, float, float]
    open_bottom: bool = False


@dataclass
class Room:
    vertices: np.ndarray  # (N, 3) float32, metres, z up
    faces: np.ndarray  # (F, 3) int32
    colors: np.ndarray  # (N, 3) uint8
    instance: np.ndarray  # (N,) int32: objectId of each vertex
    segment: np.ndarray  # (N,) int64: ScanNet-style segment id (never shared by two instances)
    labels: list[str]  # (K,) semantic label of each objectId
    parts: list[Part]
    size: tuple[float, float, float]  # room extent (x, y, height)
    seed: int
    params: RoomParams = field(default_factory=RoomParams)

    @property
    def n_instances(self) -> int:
        return len(self.labels)

    @property
    def face_instance(self) -> np.ndarray:
        return self.instance[self.faces[:, 0]]

    def instance_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(K, 3) min and max corners of each instance's vertices."""
        return instance_boxes(self.vertices, self.instance, self.n_instances)

    def object_ids(self) -> np.ndarray:
        """objectIds of everything except floor and walls (the instances that get boxes)."""
        return np.array([k for k, label in enumerate(self.labels) if label not in STRUCTURE_LABELS], np.int64)

    def params_dict(self) -> dict:
        return asdict(self.params)


# ---------------------------------------------------------------------------------------------
# Placement in the world: quarter turns about z plus a translation keep boxes axis-aligned.

_ROTATIONS = [np.array(m, np.float64) for m in ([[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]])]


@dataclass(frozen=True)
class Placement:
    quarter_turns: int
    origin: tuple[float, float]

    def box_to_world(self, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        rotation = _ROTATIONS[self.quarter_turns % 4]
        corners = np.array([[lo[0], lo[1]], [hi[0], hi[1]]]) @ rotation.T + np.asarray(self.origin)
        return (np.array([*corners.min(0), lo[2]]), np.array([*corners.max(0), hi[2]]))

    def points_to_local(self, points: np.ndarray) -> np.ndarray:
        rotation = _ROTATIONS[self.quarter_turns % 4]
        local = points.copy()
        local[:, :2] = (points[:, :2] - np.asarray(self.origin)) @ rotation  # R^T applied row-wise
        return local


@dataclass
class _Instance:
    label: str
    placement: Placement
    material: str
    color: tuple[float, float, float]
    parts: list[tuple[str, np.ndarray, np.ndarray, bool]]  # world (kind, min, max, open_bottom)
    extra: dict = field(default_factory=dict)  # material details, e.g. cabinet door seams (local)


def _local_parts(placement: Placement, local: list[tuple]) -> list[tuple[str, np.ndarray, np.ndarray, bool]]:
    parts = []
    for kind, lo, hi, *rest in local:
        world_lo, world_hi = placement.box_to_world(np.asarray(lo, float), np.asarray(hi, float))
        parts.append((kind, world_lo, world_hi, bool(rest[0]) if rest else False))
    return parts


# ---------------------------------------------------------------------------------------------
# Furniture in its local frame: centred on the xy origin, front towards +y, standing on z = 0.

def _table(rng) -> tuple[list, dict]:
    length, width = rng.uniform(1.0, 1.5), rng.uniform(0.62, 0.8)
    height, top = rng.uniform(0.72, 0.76), rng.uniform(0.03, 0.045)
    leg, inset = 0.05, 0.04
    parts = [("box", (-length / 2, -width / 2, height - top), (length / 2, width / 2, height))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (length / 2 - inset - leg / 2), sy * (width / 2 - inset - leg / 2)
            parts.append(("box", (cx - leg / 2, cy - leg / 2, 0.0), (cx + leg / 2, cy + leg / 2, height - top), True))
    return parts, {"length": length, "width": width, "height": height}


def _chair(rng, style: dict) -> list:
    width, depth, seat_h = style["width"], style["depth"], style["seat_height"]
    seat_t, back_t, leg = 0.04, 0.03, 0.035
    parts = [("box", (-width / 2, -depth / 2, seat_h - seat_t), (width / 2, depth / 2, seat_h))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (width / 2 - 0.015 - leg / 2), sy * (depth / 2 - 0.015 - leg / 2)
            parts.append(("box", (cx - leg / 2, cy - leg / 2, 0.0), (cx + leg / 2, cy + leg / 2, seat_h - seat_t), True))
    parts.append(("box", (-width / 2, -depth / 2, seat_h), (width / 2, -depth / 2 + back_t, seat_h + style["back_height"])))
    return parts


def _cabinet(rng) -> tuple[list, dict]:
    width, depth, height = rng.uniform(0.6, 1.1), rng.uniform(0.4, 0.5), rng.uniform(0.75, 0.95)
    plinth, top = 0.08, 0.03
    parts = [
        ("box", (-width / 2 + 0.03, -depth / 2, 0.0), (width / 2 - 0.03, depth / 2 - 0.05, plinth), True),
        ("box", (-width / 2, -depth / 2, plinth), (width / 2, depth / 2, height - top)),
        ("box", (-width / 2, -depth / 2, height - top), (width / 2, depth / 2 + 0.01, height)),
    ]
    doors = 2 if width > 0.75 else 1
    seams = [(0, 0.0)] if doors == 2 else []
    handle_x = [-0.06, 0.04] if doors == 2 else [width / 2 - 0.1]
    for hx in handle_x:
        parts.append(("box", (hx, depth / 2, height - 0.26), (hx + 0.02, depth / 2 + 0.02, height - 0.12)))
    return parts, {"seams": seams + [(2, height - top)], "height": height, "width": width, "depth": depth}


def _shelf(rng, max_height: float) -> tuple[list, dict]:
    width, depth = rng.uniform(0.8, 1.2), rng.uniform(0.3, 0.4)
    height = min(rng.uniform(1.4, 1.9), max_height)
    board, back = 0.02, 0.01
    n_gaps = max(2, int(round((height - board) / 0.38)))
    levels = np.linspace(0.0, height - board, n_gaps + 1)
    inner_x = (-width / 2 + board, width / 2 - board)
    parts = [
        ("box", (-width / 2, -depth / 2, 0.0), (inner_x[0], depth / 2, height), True),
        ("box", (inner_x[1], -depth / 2, 0.0), (width / 2, depth / 2, height), True),
        ("box", (inner_x[0], -depth / 2, 0.0), (inner_x[1], -depth / 2 + back, height), True),
    ]
    for z in levels:
        parts.append(("box", (inner_x[0], -depth / 2 + back, z), (inner_x[1], depth / 2, z + board), z == 0.0))
    # Interior levels: the floor of each compartment and the free height above it.
    compartments = [((inner_x[0], -depth / 2 + back), (inner_x[1], depth / 2), z + board, levels[i + 1] - z - board)
                    for i, z in enumerate(levels[:-1])]
    return parts, {"compartments": compartments}


# ---------------------------------------------------------------------------------------------
# Collision tests between axis-aligned boxes.

def _boxes_overlap(lo, hi, others_lo, others_hi, margin: float) -> bool:
    """True when box (lo, hi), grown by ``margin``, overlaps any other box with positive volume."""
    if len(others_lo) == 0:
        return False
    return bool(np.any(np.all((lo - margin < others_hi) & (others_lo < hi + margin), axis=1)))


class _Layout:
    """Accumulates instances and answers collision queries against everything placed so far."""

    def __init__(self, size: np.ndarray):
        self.size = size
        self.instances: list[_Instance] = []
        self._lo: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []

    def fits(self, parts, margin: float) -> bool:
        """Parts stay inside the room and keep ``margin`` from every part placed so far."""
        lo = np.array([p[1] for p in parts])
        hi = np.array([p[2] for p in parts])
        if np.any(lo < -1e-9) or np.any(hi > self.size + 1e-9):
            return False
        others_lo = np.array(self._lo).reshape(-1, 3)
        others_hi = np.array(self._hi).reshape(-1, 3)
        return not any(_boxes_overlap(a, b, others_lo, others_hi, margin) for a, b in zip(lo, hi))

    def add(self, instance: _Instance, collide: bool = True) -> int:
        index = len(self.instances)
        self.instances.append(instance)
        if collide:
            for _, lo, hi, _ in instance.parts:
                self._lo.append(lo)
                self._hi.append(hi)
        return index


_PALETTE = {
    "wall": [(0.86, 0.84, 0.78), (0.80, 0.84, 0.86), (0.88, 0.82, 0.74), (0.78, 0.82, 0.76)],
    "floor": [(0.55, 0.40, 0.28), (0.62, 0.60, 0.56), (0.45, 0.36, 0.30)],
    "table": [(0.62, 0.45, 0.30), (0.80, 0.68, 0.50), (0.36, 0.26, 0.20), (0.85, 0.85, 0.82)],
    "chair": [(0.70, 0.15, 0.12), (0.15, 0.30, 0.62), (0.20, 0.50, 0.28), (0.30, 0.30, 0.32), (0.85, 0.55, 0.15)],
    "cabinet": [(0.90, 0.90, 0.88), (0.70, 0.58, 0.42), (0.42, 0.48, 0.56), (0.60, 0.25, 0.22)],
    "shelf": [(0.74, 0.58, 0.40), (0.30, 0.22, 0.16), (0.92, 0.92, 0.90)],
    "box": [(0.72, 0.55, 0.35), (0.85, 0.20, 0.20), (0.20, 0.55, 0.80), (0.95, 0.80, 0.20), (0.30, 0.65, 0.35)],
    "cup": [(0.95, 0.95, 0.95), (0.90, 0.30, 0.20), (0.25, 0.35, 0.85), (0.95, 0.75, 0.10)],
    "book": [(0.70, 0.12, 0.15), (0.12, 0.25, 0.55), (0.15, 0.45, 0.25), (0.90, 0.80, 0.55), (0.25, 0.25, 0.25)],
}

_MATERIAL = {"wall": "plaster", "floor": "floor", "table": "wood", "chair": "fabric", "cabinet": "panels",
             "shelf": "wood", "box": "stripes", "cup": "plain", "book": "stripes"}


def _pick_color(rng, label: str, jitter: float = 0.04) -> tuple[float, float, float]:
    options = _PALETTE[label]
    base = np.asarray(options[rng.integers(len(options))])
    return tuple(np.clip(base + rng.normal(0, jitter, 3), 0, 1))


def _jitter(rng, color, amount: float = 0.025) -> tuple[float, float, float]:
    return tuple(np.clip(np.asarray(color) + rng.normal(0, amount, 3), 0, 1))


# ---------------------------------------------------------------------------------------------
# Layout: structure, furniture against walls, tables with chairs, then small objects.

_WALL_GAP = 0.01  # furniture stands 1 cm off the wall
_FURNITURE_MARGIN = 0.04  # free space kept between pieces of furniture


def _add_structure(layout: _Layout, rng) -> None:
    sx, sy, h = layout.size
    identity = Placement(0, (0.0, 0.0))
    floor_color = _pick_color(rng, "floor")
    layout.add(_Instance("floor", identity, "floor", floor_color,
                         [("plane", np.array([0.0, 0.0, 0.0]), np.array([sx, sy, 0.0]), False)],
                         {"tile": float(rng.uniform(0.3, 0.6))}), collide=False)
    wall_color = _pick_color(rng, "wall", jitter=0.015)
    walls = [((0, 0, 0), (sx, 0, h)), ((sx, 0, 0), (sx, sy, h)), ((0, sy, 0), (sx, sy, h)), ((0, 0, 0), (0, sy, h))]
    for lo, hi in walls:
        layout.add(_Instance("wall", identity, "plaster", _jitter(rng, wall_color, 0.01),
                             [("plane", np.array(lo, float), np.array(hi, float), False)]), collide=False)


def _wall_placement(rng, size: np.ndarray, width: float, depth: float) -> Placement:
    """A pose that puts an object's back (local -y) against a random wall, facing into the room."""
    wall = int(rng.integers(4))
    sx, sy = size[0], size[1]
    along = sx if wall in (0, 2) else sy
    t = rng.uniform(width / 2, along - width / 2)
    off = depth / 2 + _WALL_GAP
    # wall 0: y = 0 facing +y; 1: x = sx facing -x; 2: y = sy facing -y; 3: x = 0 facing +x
    origin = [(t, off), (sx - off, t), (t, sy - off), (off, t)][wall]
    return Placement(wall, origin)


def _place_against_wall(layout: _Layout, rng, label: str, build, tries: int = 300) -> int | None:
    for _ in range(tries):
        local, extra = build()
        lo = np.min([p[1] for p in local], axis=0)
        hi = np.max([p[2] for p in local], axis=0)
        placement = _wall_placement(rng, layout.size, hi[0] - lo[0], hi[1] - lo[1])
        parts = _local_parts(placement, local)
        if layout.fits(parts, _FURNITURE_MARGIN):
            return layout.add(_Instance(label, placement, _MATERIAL[label], _pick_color(rng, label), parts, extra))
    return None


def _chair_slots(table: dict, chair_width: float) -> list[tuple[float, int]]:
    """(x along the table, side +1/-1) for chairs on the table's long sides, middle slots first."""
    length = table["length"]
    if length >= 2 * chair_width + 0.35:
        xs = [min(length / 4, length / 2 - 0.12 - chair_width / 2)]
        xs = [-xs[0], xs[0]]
    else:
        xs = [0.0]
    return [(x, side) for side in (1, -1) for x in xs]


def _place_table_group(layout: _Layout, rng, chairs_wanted: int, chair_style: dict, colors: dict,
                       must_tuck: bool) -> tuple[int | None, int]:
    """A table in the open floor plus up to ``chairs_wanted`` chairs; returns (table id, chairs placed)."""
    chair_reach = chair_style["depth"] + 0.15
    for _ in range(300):
        local, info = _table(rng)
        turns = int(rng.integers(2))
        half = np.array([info["length"] / 2 + 0.1, info["width"] / 2 + chair_reach])
        half_world = half[::-1] if turns % 2 else half
        if np.any(2 * half_world >= layout.size[:2]):
            continue
        origin = tuple(rng.uniform(half_world, layout.size[:2] - half_world))
        placement = Placement(turns, origin)
        zone_lo, zone_hi = placement.box_to_world(np.array([-half[0], -half[1], 0.0]), np.array([half[0], half[1], 1.0]))
        if not layout.fits([("box", zone_lo, zone_hi, False)], 0.0):
            continue  # keep room for the chairs around the table
        table_id = layout.add(_Instance("table", placement, "wood", _jitter(rng, colors["table"]),
                                        _local_parts(placement, local), {"length": info["length"]}))
        placed = 0
        for x, side in _chair_slots(info, chair_style["width"]):
            if placed >= chairs_wanted:
                break
            tucked = (must_tuck and placed == 0) or rng.random() < 0.4
            for _attempt in range(20):
                # tuck > 0 slides the seat's front edge under the table top; the back stays outside.
                tuck = rng.uniform(0.08, 0.2) if tucked else -rng.uniform(0.03, 0.25)
                centre_local = np.array([x + rng.normal(0, 0.03), side * (info["width"] / 2 + chair_style["depth"] / 2 - tuck)])
                centre = _ROTATIONS[turns] @ centre_local + np.asarray(origin)
                # The chair faces the table: its local +y must point towards the table centre.
                chair_placement = Placement(turns + (2 if side > 0 else 0), tuple(centre))
                parts = _local_parts(chair_placement, _chair(rng, chair_style))
                if layout.fits(parts, 0.02):
                    layout.add(_Instance("chair", chair_placement, "fabric", _jitter(rng, colors["chair"]), parts,
                                         {"tucked": tucked}))
                    placed += 1
                    break
        return table_id, placed
    return None, 0


def _place_free_chair(layout: _Layout, rng, chair_style: dict, colors: dict) -> bool:
    for _ in range(200):
        placement = Placement(int(rng.integers(4)), tuple(rng.uniform(0.4, layout.size[:2] - 0.4)))
        parts = _local_parts(placement, _chair(rng, chair_style))
        if layout.fits(parts, 0.1):
            layout.add(_Instance("chair", placement, "fabric", _jitter(rng, colors["chair"]), parts, {"tucked": False}))
            return True
    return False


def _small_object(rng, label: str, max_height: float, max_depth: float) -> tuple[list, tuple[float, float]]:
    """A box, cup or book in its local frame, and its footprint (x, y) size."""
    if label == "cup":
        radius, height = rng.uniform(0.035, 0.05), min(rng.uniform(0.08, 0.12), max_height)
        return [("cylinder", (-radius, -radius, 0.0), (radius, radius, height), True)], (2 * radius, 2 * radius)
    if label == "book":
        size = (rng.uniform(0.025, 0.05), min(rng.uniform(0.14, 0.22), max_depth), min(rng.uniform(0.18, 0.26), max_height))
    else:
        size = (rng.uniform(0.09, 0.3), min(rng.uniform(0.08, 0.22), max_depth), min(rng.uniform(0.05, 0.2), max_height))
    half = np.array(size[:2]) / 2
    return [("box", (-half[0], -half[1], 0.0), (half[0], half[1], size[2]), True)], size[:2]


def _place_on_surface(layout: _Layout, rng, label: str, surface: dict) -> int | None:
    """Rest a small object on a horizontal surface: bottom on the surface, footprint inside it."""
    lo, hi = np.asarray(surface["min"]), np.asarray(surface["max"])
    for _ in range(60):
        local, footprint = _small_object(rng, label, surface["free_height"] - 0.02, (hi - lo).min())
        turns = int(rng.integers(4)) if label != "book" else surface["turns"]
        foot = np.array(footprint[::-1] if turns % 2 else footprint)
        if np.any(foot >= hi - lo):
            continue
        centre = rng.uniform(lo + foot / 2, hi - foot / 2)
        placement = Placement(turns, tuple(centre))
        parts = [(kind, a + np.array([0, 0, surface["z"]]), b + np.array([0, 0, surface["z"]]), ob)
                 for kind, a, b, ob in _local_parts(placement, local)]
        if layout.fits(parts, 0.0):
            extra = {"on": surface["instance"]}
            return layout.add(_Instance(label, placement, _MATERIAL[label], _pick_color(rng, label), parts, extra))
    return None


def _surfaces(layout: _Layout) -> dict[str, list[dict]]:
    """Horizontal places where small objects can stand, in world coordinates."""
    found: dict[str, list[dict]] = {"table": [], "shelf": [], "cabinet": []}
    for index, inst in enumerate(layout.instances):
        if inst.label == "table" or inst.label == "cabinet":
            _, lo, hi, _ = inst.parts[0] if inst.label == "table" else inst.parts[2]
            found[inst.label].append({"instance": index, "min": lo[:2] + 0.03, "max": hi[:2] - 0.03, "z": hi[2],
                                      "free_height": 0.3, "turns": inst.placement.quarter_turns})
        elif inst.label == "shelf":
            for xy_lo, xy_hi, z, free in inst.extra["compartments"]:
                lo, hi = inst.placement.box_to_world(np.array([*xy_lo, z]), np.array([*xy_hi, z]))
                found["shelf"].append({"instance": index, "min": lo[:2], "max": hi[:2], "z": z, "free_height": free,
                                       "turns": inst.placement.quarter_turns})
    return found


def _layout_room(seed: int, params: RoomParams) -> tuple[_Layout, np.ndarray]:
    rng = np.random.default_rng(seed)
    if params.room_size is not None:
        size = np.asarray(params.room_size, np.float64)
    else:
        size = rng.uniform(params.room_size_min, params.room_size_max)
    layout = _Layout(size)
    _add_structure(layout, rng)
    colors = {"table": _pick_color(rng, "table"), "chair": _pick_color(rng, "chair")}
    chair_style = {"width": rng.uniform(0.4, 0.46), "depth": rng.uniform(0.4, 0.45),
                   "seat_height": rng.uniform(0.44, 0.48), "back_height": rng.uniform(0.35, 0.45)}

    for k in range(params.n_shelves):
        if _place_against_wall(layout, rng, "shelf", lambda: _shelf(rng, size[2] - 0.3)) is None and k == 0:
            raise ValueError(f"room of size {size.round(2).tolist()} has no wall space for a shelf")
    for _ in range(params.n_cabinets):
        _place_against_wall(layout, rng, "cabinet", lambda: _cabinet(rng))

    chairs_left = params.n_chairs
    for t in range(params.n_tables):
        share = int(np.ceil(chairs_left / (params.n_tables - t)))
        table_id, placed = _place_table_group(layout, rng, share, chair_style, colors, must_tuck=(t == 0))
        if table_id is None and t == 0:
            raise ValueError(f"room of size {size.round(2).tolist()} has no free floor for a table")
        chairs_left -= placed
    while chairs_left > 0 and _place_free_chair(layout, rng, chair_style, colors):
        chairs_left -= 1

    surfaces = _surfaces(layout)
    tables = surfaces["table"]
    on_tables = tables + surfaces["cabinet"]
    for k in range(params.n_table_objects):
        # The first object goes on a table so that an object resting on a table always exists.
        surface = tables[k % len(tables)] if k == 0 else on_tables[rng.integers(len(on_tables))]
        _place_on_surface(layout, rng, "cup" if rng.random() < 0.4 else "box", surface)
    shelves = surfaces["shelf"]
    for k in range(params.n_shelf_objects):
        surface = shelves[k % len(shelves)] if k == 0 else shelves[rng.integers(len(shelves))]
        _place_on_surface(layout, rng, "book" if rng.random() < 0.6 else "box", surface)
    _check_guarantees(layout, seed)
    return layout, size


def _check_guarantees(layout: _Layout, seed: int) -> None:
    """Fail loudly rather than hand out a room without the box relations that tests rely on."""
    labels = [inst.label for inst in layout.instances]
    supports = [labels[inst.extra["on"]] for inst in layout.instances if "on" in inst.extra]
    checks = {
        "a chair tucked under a table": any(inst.extra.get("tucked") for inst in layout.instances),
        "an object resting on a table": "table" in supports,
        "an object inside a shelf": "shelf" in supports,
    }
    missing = [name for name, ok in checks.items() if not ok]
    if missing:
        raise ValueError(f"seed {seed}: could not place {', '.join(missing)} in a room of size "
                         f"{layout.size.round(2).tolist()}; use a larger room or fewer objects")


# ---------------------------------------------------------------------------------------------
# Meshing and colouring.

def _part_mesh(kind: str, lo: np.ndarray, hi: np.ndarray, open_bottom: bool, spacing: float):
    if kind == "box":
        return box_surface(lo, hi, spacing, skip=("-z",) if open_bottom else ())
    if kind == "cylinder":
        vertices, faces = cylinder_surface((lo[:2] + hi[:2]) / 2, (hi[0] - lo[0]) / 2, lo[2], hi[2], spacing)
        if open_bottom:
            bottom = np.all(np.isclose(vertices[faces][:, :, 2], lo[2]), axis=1)
            faces = faces[~bottom]
        return vertices, faces
    # plane: floor (normal +z) or a wall (normal into the room)
    extent = hi - lo
    if extent[2] == 0:
        return plane_surface(lo, (extent[0], 0, 0), (0, extent[1], 0), spacing)
    if extent[1] == 0:  # wall at y = const
        inward_positive = lo[1] == 0
        u, v = ((0, 0, extent[2]), (extent[0], 0, 0)) if inward_positive else ((extent[0], 0, 0), (0, 0, extent[2]))
        return plane_surface(lo, u, v, spacing)
    inward_positive = lo[0] == 0  # wall at x = const
    u, v = ((0, extent[1], 0), (0, 0, extent[2])) if inward_positive else ((0, 0, extent[2]), (0, extent[1], 0))
    return plane_surface(lo, u, v, spacing)


def _instance_colors(inst: _Instance, vertices: np.ndarray, rng) -> np.ndarray:
    local = inst.placement.points_to_local(vertices)
    if inst.material == "floor":
        factor = texture.tiles(local, rng, inst.extra["tile"]) * (1 + 0.06 * texture.smooth_noise(local, rng, 1.5))
    elif inst.material == "plaster":
        factor = 1 + 0.035 * texture.smooth_noise(local, rng, 1.2) + 0.015 * texture.smooth_noise(local, rng, 0.25)
    elif inst.material == "wood":
        factor = texture.wood(local, rng, grain_axis=0)
    elif inst.material == "fabric":
        factor = (1 + 0.08 * texture.smooth_noise(local, rng, 0.1)) * texture.stripes(local, rng, 2, 0.08) ** 0.3
    elif inst.material == "panels":
        factor = texture.panels(local, inst.extra["seams"]) * (1 + 0.04 * texture.smooth_noise(local, rng, 0.4))
    elif inst.material == "stripes":
        factor = texture.stripes(local, rng, int(rng.integers(3)), rng.uniform(0.03, 0.1))
    else:
        factor = 1 + 0.05 * texture.smooth_noise(local, rng, 0.05)
    return texture.finish(inst.color, factor, rng, noise=0.012 if inst.material == "plaster" else 0.025)


def _segment_ids(part_index: np.ndarray, vertices: np.ndarray, part_min: np.ndarray, patch: float) -> np.ndarray:
    """Segment id per vertex: patches of a part's surface, named like ScanNet by a member vertex index.

    A segment is one part's vertices in one ``patch``-sized cell, so it never spans two instances.
    """
    cells = np.floor((vertices - part_min) / patch).astype(np.int64)
    keys = np.concatenate([part_index[:, None], cells], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype(np.int64)


def generate_room(seed: int, preset: str = "default", **overrides) -> Room:
    """A procedural room from ``seed``; the same seed and parameters give bit-identical arrays."""
    params = room_params(preset, **overrides)
    layout, size = _layout_room(seed, params)
    texture_rng = np.random.default_rng([seed, 1])  # independent stream: textures don't shift layouts
    vertices, faces, colors, instance, part_index, part_min, parts = [], [], [], [], [], [], []
    offset = 0
    for inst_id, inst in enumerate(layout.instances):
        spacing = params.structure_spacing if inst.label in STRUCTURE_LABELS else params.spacing
        inst_vertices = []
        for kind, lo, hi, open_bottom in inst.parts:
            v, f = _part_mesh(kind, lo, hi, open_bottom, spacing)
            used = np.unique(f)  # drop vertices that only belonged to a skipped face
            remap = np.full(len(v), -1, np.int64)
            remap[used] = np.arange(len(used))
            v, f = v[used], remap[f]
            vertices.append(v)
            faces.append(f + offset)
            inst_vertices.append(v)
            part_index.append(np.full(len(v), len(parts), np.int64))
            part_min.append(np.broadcast_to(lo, v.shape))
            parts.append(Part(inst_id, kind, tuple(map(float, lo)), tuple(map(float, hi)), open_bottom))
            offset += len(v)
        inst_vertices = np.concatenate(inst_vertices)
        colors.append(_instance_colors(inst, inst_vertices, texture_rng))
        instance.append(np.full(len(inst_vertices), inst_id, np.int32))
    all_vertices = np.concatenate(vertices)
    segment = _segment_ids(np.concatenate(part_index), all_vertices, np.concatenate(part_min), params.segment_size)
    return Room(
        vertices=all_vertices.astype(np.float32),
        faces=np.concatenate(faces).astype(np.int32),
        colors=np.concatenate(colors),
        instance=np.concatenate(instance),
        segment=segment,
        labels=[inst.label for inst in layout.instances],
        parts=parts,
        size=tuple(float(x) for x in size),
        seed=int(seed),
        params=params,
    )
