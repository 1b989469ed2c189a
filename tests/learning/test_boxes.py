"""Box partition: hand-made boxes and points with known membership, the smallest-box rule,
nested boxes, bad boxes, and the box_partition stage on hand-made scene.h5 files."""

import numpy as np
import pytest

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.learning.boxes import (
    AMBIGUOUS,
    BACKGROUND,
    box_volume,
    check_boxes,
    containing_box,
    partition_points,
    smallest_box_assignment,
)
from pipeline.cli import main as cli_main
from pipeline.commands.box_partition import run_box_partition
from pipeline.errors import InputError

# Box 0: [0,2]^3 (volume 8); box 1: [1,3]x[0,2]x[0,2] (volume 8); box 2: [1.5,1.8]x[0.5,0.8]x[0.5,0.8]
# (inside both 0 and 1, volume 0.027).
BOX_MIN = np.array([[0, 0, 0], [1, 0, 0], [1.5, 0.5, 0.5]], float)
BOX_MAX = np.array([[2, 2, 2], [3, 2, 2], [1.8, 0.8, 0.8]], float)
POINTS = np.array([
    [0.5, 1, 1],  # box 0 only
    [2.5, 1, 1],  # box 1 only
    [1.2, 1, 1],  # boxes 0 and 1
    [1.6, 0.6, 0.6],  # boxes 0, 1, 2
    [5, 5, 5],  # no box
    [2, 1, 1],  # on box 0's face and inside box 1: faces count
], float)


def test_partition_hand_made():
    part = partition_points(POINTS, BOX_MIN, BOX_MAX)
    assert part.point_box.tolist() == [0, 1, AMBIGUOUS, AMBIGUOUS, BACKGROUND, AMBIGUOUS]
    assert part.n_containing.tolist() == [1, 1, 2, 3, 0, 2]
    assert list(zip(part.ambiguous_point.tolist(), part.ambiguous_box.tolist())) == [
        (2, 0), (2, 1), (3, 0), (3, 1), (3, 2), (5, 0), (5, 1)]
    member = part.membership(3)
    assert member.sum() == 9 and member[3].all() and not member[4].any()


def test_smallest_box_rule():
    part = partition_points(POINTS, BOX_MIN, BOX_MAX)
    # Boxes 0 and 1 have equal volume: the tie goes to the lower index; box 2 is smallest.
    assigned = smallest_box_assignment(part, box_volume(BOX_MIN, BOX_MAX))
    assert assigned.tolist() == [0, 1, 0, 2, BACKGROUND, 0]


def test_containing_box_nested_identical_and_none():
    assert containing_box(BOX_MIN, BOX_MAX).tolist() == [-1, -1, 0]  # 0 and 1 have equal volume: first wins
    same = containing_box(np.zeros((2, 3)), np.ones((2, 3)))
    assert same.tolist() == [-1, 0]  # identical boxes: the later one counts as inside the earlier
    apart = containing_box(np.array([[0, 0, 0], [2, 2, 2]]), np.array([[1, 1, 1], [3, 3, 3]]))
    assert apart.tolist() == [-1, -1]


@pytest.mark.parametrize("lo,hi,message", [
    ([[0, 0, 0]], [[-1, 1, 1]], "min > max"),
    ([[0, np.nan, 0]], [[1, 1, 1]], "non-finite"),
    ([[0, 0, 0]], [[1, 1, 1], [2, 2, 2]], "boxes/max has 2"),
])
def test_bad_boxes(lo, hi, message):
    with pytest.raises(InputError, match=message):
        check_boxes(np.array(lo, float), np.array(hi, float), "scene.h5")


def _scene(tmp_path, with_boxes=True, n_boxes=3):
    arrays = {"vertices": POINTS.astype(np.float32), "colors": np.zeros((len(POINTS), 3), np.uint8),
              "normals": np.zeros((len(POINTS), 3), np.float32)}
    if with_boxes:
        arrays["boxes"] = {"min": BOX_MIN[:n_boxes], "max": BOX_MAX[:n_boxes],
                           "label": np.array(["table", "chair", "cup"][:n_boxes]),
                           "instance": np.arange(n_boxes, dtype=np.int32)}
    return write_artifact(tmp_path / "scene.h5", "scene", arrays, attrs={"scene_name": "hand"})


def test_stage_writes_partition(tmp_path):
    out = run_box_partition(_scene(tmp_path), tmp_path / "boxes.h5")
    art = read_artifact(out, "boxes", required=["point_box", "ambiguous/point", "box/contained_in"])
    assert art["point_box"].tolist() == [0, 1, AMBIGUOUS, AMBIGUOUS, BACKGROUND, AMBIGUOUS]
    assert art["smallest_box"].tolist() == [0, 1, 0, 2, BACKGROUND, 0]
    assert art["box/n_points"].tolist() == [4, 4, 1] and art["box/n_labelled"].tolist() == [1, 1, 0]
    assert art["box/contained_in"].tolist() == [-1, -1, 0]
    assert art.attrs["n_ambiguous"] == 3 and art.attrs["n_nested"] == 1
    assert art["box/label"].tolist() == ["table", "chair", "cup"]


def test_scene_without_boxes_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="has no boxes"):
        run_box_partition(_scene(tmp_path, with_boxes=False), tmp_path / "boxes.h5")


def test_scene_with_zero_boxes_is_all_background(tmp_path):
    out = run_box_partition(_scene(tmp_path, n_boxes=0), tmp_path / "boxes.h5")
    art = read_artifact(out, "boxes")
    assert (art["point_box"] == BACKGROUND).all() and art.attrs["n_boxes"] == 0


def test_cli(tmp_path):
    scene = _scene(tmp_path)
    assert cli_main(["box_partition", str(scene), "--out", str(tmp_path / "b.h5")]) == 0
    assert read_artifact(tmp_path / "b.h5", "boxes").attrs["n_boxes"] == 3


def test_smallest_containing_box_by_hand():
    from pipeline.learning.boxes import smallest_containing_box

    # point 0 in boxes 0, 1 (box 1 smaller); point 2 in boxes 0, 2 of equal volume (lower index wins)
    points, boxes = np.array([0, 0, 2, 2]), np.array([0, 1, 0, 2])
    volume = np.array([1.0, 0.5, 1.0])
    assert smallest_containing_box(points, boxes, volume).tolist() == [1, -1, 0]
    assert smallest_containing_box(points[:0], boxes[:0], volume).tolist() == []
