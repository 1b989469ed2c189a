"""Ground-truth readers of pipeline/io/scannet.py: the benchmark txt, ScanNet's label map, raw names."""

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.io.scannet import (
    ground_truth_from_benchmark_values,
    nyu40_ids_of_labels,
    parse_benchmark_ground_truth,
    read_label_map,
    read_scannet_ground_truth,
)


def _write_lines(path, values):
    path.write_text("".join(f"{v}\n" for v in values))
    return path


def test_benchmark_txt_is_parsed_into_instances_ordered_by_their_own_id(tmp_path):
    # chair #7, floor #2, unannotated, table #3, chair #7 again, otherfurniture #12
    path = _write_lines(tmp_path / "scene0001_00.txt", [5007, 2002, 0, 7003, 5007, 39012])
    values = parse_benchmark_ground_truth(path, 6)
    assert values.tolist() == [5007, 2002, 0, 7003, 5007, 39012]
    gt = ground_truth_from_benchmark_values(values)
    # positions follow the own ids 2, 3, 7, 12
    assert gt.instance_id.tolist() == [2, 3, 7, 12] and gt.instance_id.dtype == np.int64
    assert gt.instance.tolist() == [2, 0, -1, 1, 2, 3] and gt.instance.dtype == np.int32
    assert gt.labels == ["floor", "table", "chair", "otherfurniture"]
    assert gt.nyu40.tolist() == [2, 7, 5, 39] and gt.nyu40.dtype == np.int32


def test_benchmark_values_outside_nyu40_have_unknown_class():
    gt = ground_truth_from_benchmark_values(np.array([41001, 5, 5002]))
    # 5 is instance 5 of class 0 (no NYU40 class); 41 is not an NYU40 id either
    assert gt.instance_id.tolist() == [1, 2, 5]
    assert gt.nyu40.tolist() == [-1, 5, -1]
    assert gt.instance.tolist() == [0, 2, 1]


def test_same_instance_id_with_two_classes_stays_two_instances_like_the_benchmark(caplog):
    gt = ground_truth_from_benchmark_values(np.array([5003, 7003, 5003]))
    assert gt.instance_id.tolist() == [3, 3] and gt.nyu40.tolist() == [5, 7]
    assert gt.instance.tolist() == [0, 1, 0]
    assert "appear with several classes" in caplog.text


def test_benchmark_txt_length_must_match_the_vertex_count(tmp_path):
    path = _write_lines(tmp_path / "s.txt", [0, 5001, 5001])
    with pytest.raises(InputError, match=r"s\.txt: ends at line 3 but the scene has 4 vertices"):
        parse_benchmark_ground_truth(path, 4)
    with pytest.raises(InputError, match=r"s\.txt: line 3: more lines \(3\) than the scene's 2 vertices"):
        parse_benchmark_ground_truth(path, 2)


def test_benchmark_txt_non_integer_line_is_named(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("5001\n5001\n5001.5\n0\n")
    with pytest.raises(InputError, match=r"s\.txt: line 3: '5001\.5' is not an integer"):
        parse_benchmark_ground_truth(path, 4)
    path.write_text("5001\n\n0\n0\n")  # a blank line inside the file is not a vertex's value
    with pytest.raises(InputError, match=r"s\.txt: line 2: '' is not an integer"):
        parse_benchmark_ground_truth(path, 4)


def test_benchmark_txt_negative_value_is_named(tmp_path):
    path = _write_lines(tmp_path / "s.txt", [0, 0, 0, 0, -5001])
    with pytest.raises(InputError, match=r"s\.txt: line 5: negative value -5001"):
        parse_benchmark_ground_truth(path, 5)


def test_txt_is_the_ground_truth_only_without_aggregation_json(tmp_path):
    scene = tmp_path / "scene0002_00"
    scene.mkdir()
    assert read_scannet_ground_truth(scene, 3) is None
    _write_lines(scene / "scene0002_00.txt", [3001, 0, 3001])
    gt = read_scannet_ground_truth(scene, 3)
    assert gt.source == "scene0002_00.txt" and gt.labels == ["cabinet"] and gt.instance.tolist() == [0, -1, 0]
    (scene / "scene0002_00_vh_clean_2.0.010000.segs.json").write_text('{"segIndices": [0, 0, 1]}')
    (scene / "scene0002_00.aggregation.json").write_text(
        '{"segGroups": [{"objectId": 0, "segments": [1], "label": "chair"}]}'
    )
    gt = read_scannet_ground_truth(scene, 3)
    assert gt.source == "aggregation.json" and gt.labels == ["chair"] and gt.instance.tolist() == [-1, -1, 0]
    assert gt.instance_id.tolist() == [0] and gt.nyu40.tolist() == [5]


TSV_HEADER = "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\n"


def test_label_map_maps_raw_categories_to_nyu40(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text(
        TSV_HEADER
        + "1\twall\twall\t8277\t1\t12\twall\n"
        + "2\tkitchen cabinets\tkitchen cabinet\t310\t3\t6\tcabinet\n"
        + "3\toffice chair\tchair\t595\t5\t4\tchair\n"
        + "\n"  # blank lines are skipped
        + "4\tobject\tobject\t1\t0\t0\tvoid\n"
    )
    mapping = read_label_map(path)
    assert mapping == {"wall": 1, "kitchen cabinets": 3, "office chair": 5, "object": 0}
    ids, unmapped = nyu40_ids_of_labels(["Office Chair", "kitchen cabinets", "object", "sofa bed"], mapping)
    # 0 in the map and a name not in the map both mean: no NYU40 class
    assert ids.tolist() == [5, 3, -1, -1] and unmapped == ["object", "sofa bed"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("id\traw_category\tcategory\n1\twall\twall\n", r"labels\.tsv: line 1: .*lacks column\(s\) \['nyu40id'\]"),
        ("id,raw_category,nyu40id\n1,wall,1\n", r"labels\.tsv: line 1: .*lacks column\(s\)"),
        (TSV_HEADER + "1\twall\twall\t1\t1\n2\tchair\n", r"labels\.tsv: line 3: 2 tab-separated column\(s\), need at least 5"),
        (TSV_HEADER + "1\twall\twall\t1\t1\n2\tchair\tchair\t3\tfive\n", r"labels\.tsv: line 3: nyu40id 'five' is not an NYU40 id"),
        (TSV_HEADER + "1\twall\twall\t1\t41\n", r"labels\.tsv: line 2: nyu40id '41' is not an NYU40 id"),
        (TSV_HEADER + "1\t \twall\t1\t1\n", r"labels\.tsv: line 2: empty raw_category"),
        ("", r"labels\.tsv: line 1: "),
    ],
)
def test_bad_label_map_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "labels.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_label_map(path)


def test_missing_label_map_is_named(tmp_path):
    with pytest.raises(InputError, match=r"absent\.tsv: unreadable label map"):
        read_label_map(tmp_path / "absent.tsv")


def test_raw_names_count_as_nyu40_names_only_if_all_of_them_are():
    ids, unmapped = nyu40_ids_of_labels(["chair", "Shower Curtain", "otherfurniture", "wall"], None)
    assert ids.tolist() == [5, 28, 39, 1] and unmapped == []
    # one raw name that is not an NYU40 name: a partial guess would void it under scannet18
    ids, unmapped = nyu40_ids_of_labels(["chair", "office chair", "table"], None)
    assert ids.tolist() == [-1, -1, -1] and unmapped == ["office chair"]
