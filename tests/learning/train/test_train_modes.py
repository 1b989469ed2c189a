"""train.mode resolution: auto is box only when every scene has boxes; box without boxes names them."""

import pytest

from pipeline.learning.train.modes import resolve_mode


def test_auto_is_box_only_when_every_scene_has_boxes():
    assert resolve_mode("auto", []) == "box"
    assert resolve_mode("auto", ["scene0000_00"]) == "unsupervised"
    assert resolve_mode("unsupervised", []) == "unsupervised"


def test_box_mode_without_boxes_names_the_scenes():
    with pytest.raises(ValueError, match=r"scene_b.*boxes_from_ground_truth"):
        resolve_mode("box", ["scene_b"])
    with pytest.raises(ValueError, match="train.mode"):
        resolve_mode("boxes", [])
