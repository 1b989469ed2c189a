"""Training modes and how `auto` resolves (no torch import: the Snakefile uses it at planning time)."""

from __future__ import annotations

MODES = ("auto", "box", "unsupervised")


def resolve_mode(requested: str, scenes_without_boxes: list[str]) -> str:
    """The training mode: ``auto`` is box when every scene has boxes, else unsupervised; ``box``
    with scenes that have none is an error naming them. The DAG and `train` both decide here."""
    if requested not in MODES:
        raise ValueError(f"train.mode must be one of {MODES}, got {requested!r}")
    if requested == "box" and scenes_without_boxes:
        raise ValueError(f"train.mode box: scenes {sorted(scenes_without_boxes)} have no boxes (give them a "
                         "boxes.json, or set ingest.boxes_from_ground_truth for oracle boxes)")
    if requested == "auto":
        return "unsupervised" if scenes_without_boxes else "box"
    return requested
