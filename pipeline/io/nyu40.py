"""NYU40 class ids and names, and the ScanNet instance benchmark's 18 object classes.

ScanNet's benchmark ground truth (``<scene>.txt``) stores ``nyu40_id * 1000 + instance_id`` per
vertex; the instance benchmark scores only the 18 object classes of ``SCANNET18_IDS`` and treats
every other instance as void. Names are the NYU40 names ScanNet uses (``nyu40class`` column of
``scannetv2-labels.combined.tsv``).
"""

from __future__ import annotations

NYU40_NAMES: dict[int, str] = {
    1: "wall", 2: "floor", 3: "cabinet", 4: "bed", 5: "chair", 6: "sofa", 7: "table", 8: "door",
    9: "window", 10: "bookshelf", 11: "picture", 12: "counter", 13: "blinds", 14: "desk", 15: "shelves",
    16: "curtain", 17: "dresser", 18: "pillow", 19: "mirror", 20: "floor mat", 21: "clothes",
    22: "ceiling", 23: "books", 24: "refrigerator", 25: "television", 26: "paper", 27: "towel",
    28: "shower curtain", 29: "box", 30: "whiteboard", 31: "person", 32: "night stand", 33: "toilet",
    34: "sink", 35: "lamp", 36: "bathtub", 37: "bag", 38: "otherstructure", 39: "otherfurniture",
    40: "otherprop",
}

# The ScanNet instance benchmark's object classes (evaluate_semantic_instance.py's VALID_CLASS_IDS).
SCANNET18_IDS: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)

# Structural classes: never objects, never boxes.
STRUCTURE_IDS: tuple[int, ...] = (1, 2, 22)

# Spellings other tools use for the same classes (mmdetection3d writes "showercurtrain", "garbagebin"
# is its name for NYU40's otherprop bins in the 18-class set of some toolboxes).
_ALIASES = {"showercurtrain": 28, "nightstand": 32, "floormat": 20, "tv": 25, "fridge": 24, "bookcase": 10}


def _normalise(name: str) -> str:
    return "".join(ch for ch in str(name).strip().lower() if ch.isalnum())


_BY_NAME = {_normalise(name): class_id for class_id, name in NYU40_NAMES.items()} | _ALIASES


def nyu40_id(name: str) -> int | None:
    """NYU40 id of a class name (case, spaces and underscores ignored; a few aliases); None if unknown."""
    return _BY_NAME.get(_normalise(name))


def nyu40_name(class_id: int) -> str:
    """Name of an NYU40 id; ``"unknown"`` for ids outside 1..40 (0 is ScanNet's unannotated)."""
    return NYU40_NAMES.get(int(class_id), "unknown")
