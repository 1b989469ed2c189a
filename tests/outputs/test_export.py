"""Exports checked against their consumers' own rules (restated in tests/outputs/consumer_rules.py)."""

import logging

import pickle

import numpy as np
import pytest
import torch

from outputs.consumer_rules import (
    BENCHMARK_CLASS_IDS,
    MASK3D_CLASS_IGNORE,
    benchmark_ground_truth,
    load_mask3d,
    load_mmdet3d,
    load_spformer,
    read_benchmark_predictions,
)
from pipeline.io.artifacts import write_artifact
from pipeline.cli import main as cli_main
from pipeline.commands.export import export_paths, run_export
from pipeline.errors import InputError
from pipeline.outputs.evaluate import instance_ap, instance_ap_from_labels
from pipeline.outputs.export import (
    AGNOSTIC_NYU40_ID,
    box_class_ids,
    class_agnostic_ground_truth,
    collect_exports,
    export_instances,
    label_colors,
    mask3d_array,
    mmdet3d_arrays,
    mmdet3d_data_info,
    read_scannet_benchmark,
    spformer_sample,
    write_colored_ply,
    write_mask3d,
    write_mmdet3d,
    write_scannet_benchmark,
    write_spformer,
)
from pipeline.io.ply import read_ply

SCENE = "scene0000_00"


def _scene(rng, n=3000, n_superpoints=60):
    """Points whose instances are unions of superpoints, with unlabelled points and gaps in the ids."""
    superpoint = rng.integers(0, n_superpoints, n)
    sp_instance = rng.choice([-1, 0, 2, 3, 5, 6], n_superpoints)  # ids 1 and 4 have no points
    return {
        "vertices": rng.normal(size=(n, 3)).astype(np.float32) + 5.0,
        "colors": rng.integers(0, 256, (n, 3)).astype(np.uint8),
        "normals": rng.normal(size=(n, 3)).astype(np.float32),
        "superpoint": superpoint * 3 + 7,  # not consecutive: the exports renumber them
        "instance": sp_instance[superpoint],
    }


BOX_LABELS = ["cabinet", "lamp", "chair", "Refrigerator", "shelf", "otherfurniture", "book"]
BOX_NYU40 = [3, 39, 5, 24, 39, 39, 39]  # lamp (35), shelves (15), books (23) -> otherfurniture


def _write_all(tmp_path, data, instances):
    out = tmp_path / "export"
    write_scannet_benchmark(out / "scannet", SCENE, instances)
    write_spformer(export_paths(out, SCENE)["spformer"],
                   spformer_sample(data["vertices"], data["colors"], data["superpoint"], instances))
    write_mask3d(out / "mask3d", SCENE, mask3d_array(data["vertices"], data["colors"], data["normals"],
                                                     data["superpoint"], instances), data["colors"])
    write_mmdet3d(out / "mmdet3d", SCENE, mmdet3d_arrays(data["vertices"], data["colors"], data["superpoint"], instances),
                  mmdet3d_data_info(SCENE, data["vertices"], instances))
    return out


# ----------------------------------------------------------------------------------------------
# Classes


def test_box_labels_become_benchmark_class_ids():
    assert box_class_ids(BOX_LABELS, {"shelf": "shelves", "book": "books"}).tolist() == BOX_NYU40
    # other_class None keeps NYU40 ids outside the 18 (the consumers then drop them)
    assert box_class_ids(["lamp", "chair"], other_class=None).tolist() == [35, 5]
    assert box_class_ids(["lamp"], other_class="bookshelf").tolist() == [10]
    with pytest.raises(ValueError, match="not one of the benchmark's 18"):
        box_class_ids(["lamp"], other_class="otherprop")


def test_unknown_box_label_is_an_error_naming_the_box(tmp_path):
    with pytest.raises(ValueError, match=r"box 2 has label 'gizmo'.*export.class_map"):
        box_class_ids(["chair", "table", "gizmo"])
    with pytest.raises(ValueError, match=r"box 0 has label 'thing' \(mapped to 'stuff' by class_map\)"):
        box_class_ids(["thing"], {"THING": "stuff"})
    # through the command: the error names the labels file and the box
    from learning.train.helpers import write_room_artifacts

    folder = write_room_artifacts(tmp_path / "room", seed=0, preset="tiny", with_boxes=False)
    _write_labels(folder, np.zeros(_n_points(folder), np.int32), ["gizmo"], mode="box")
    with pytest.raises(InputError, match=r"pseudo_labels.h5: box 0 has label 'gizmo'"):
        run_export(folder / "scene.h5", folder / "superpoints.h5", folder / "pseudo_labels.h5", folder / "export")


def test_class_agnostic_labels_are_class_zero_of_every_consumer():
    instance = np.array([-1, 4, 4, 9, -1, 9, 2])
    for classes in (None, np.array(["object"] * 10)):
        inst = export_instances(instance, np.linspace(0, 1, 10), classes)
        assert inst.class_agnostic and inst.n_instances == 3
        assert inst.point_instance.tolist() == [-1, 1, 1, 2, -1, 2, 0]  # ids renumbered 0..K-1
        assert inst.source_id.tolist() == [2, 4, 9]
        assert (inst.nyu40 == AGNOSTIC_NYU40_ID).all()
        np.testing.assert_allclose(inst.score, np.linspace(0, 1, 10)[[2, 4, 9]])
    assert BENCHMARK_CLASS_IDS.index(AGNOSTIC_NYU40_ID) == 0  # class index 0 in all 18-class consumers


# ----------------------------------------------------------------------------------------------
# Each consumer's rules


@pytest.mark.parametrize("classes", [None, BOX_LABELS])
def test_spformer_file_passes_spformers_loader(tmp_path, classes):
    data = _scene(np.random.default_rng(1))
    inst = export_instances(data["instance"], None, classes, {"shelf": "shelves", "book": "books"})
    out = _write_all(tmp_path, data, inst)
    xyz, rgb, sp, sem, ins = torch.load(export_paths(out, SCENE)["spformer"], weights_only=False)
    assert xyz.dtype == rgb.dtype == np.float32 and sp.dtype == sem.dtype == ins.dtype == np.int64
    np.testing.assert_allclose(xyz, data["vertices"] - data["vertices"].mean(0), atol=1e-5)  # centred, as SPFormer's prep
    np.testing.assert_allclose((rgb + 1) * 127.5, data["colors"], atol=1e-3)
    assert sp.min() == 0 and sp.max() == len(np.unique(sp)) - 1
    unlabelled = data["instance"] < 0
    assert (ins[unlabelled] == -100).all() and (sem[unlabelled] == -100).all()  # SPFormer's ignore index
    assert set(np.unique(ins[~unlabelled])) == set(range(inst.n_instances))
    assert sem[~unlabelled].min() >= 2  # < 2 is wall / floor / ignored for SPFormer

    loaded = load_spformer(out / "spformer")[SCENE]
    assert len(loaded["labels"]) == inst.n_instances  # every pseudo-instance survives SPFormer's filtering
    expected = [BENCHMARK_CLASS_IDS.index(c) for c in inst.nyu40]
    assert loaded["labels"].tolist() == expected
    for k, mask in enumerate(loaded["masks"]):
        np.testing.assert_array_equal(mask, inst.point_instance == k)
    assert loaded["spmasks"].any(axis=1).all()


def test_old_spformer_export_failed_spformers_rules(tmp_path):
    """What issue 15 found: torch tensors, and semantic 0 for every pseudo-instance."""
    data = _scene(np.random.default_rng(2))
    instance = np.where(data["instance"] >= 0, data["instance"], -100)
    old = (torch.from_numpy(data["vertices"]), torch.from_numpy(data["colors"] / 127.5 - 1),
           torch.from_numpy(data["superpoint"]), torch.from_numpy(np.where(instance >= 0, 0, -100)),
           torch.from_numpy(instance))
    (tmp_path / "train").mkdir()
    torch.save(old, tmp_path / "train" / f"{SCENE}_inst_nostuff.pth")
    with pytest.raises(AssertionError, match="not a numpy array"):
        load_spformer(tmp_path)


@pytest.mark.parametrize("classes", [None, BOX_LABELS])
def test_mask3d_file_passes_mask3ds_dataset(tmp_path, classes):
    data = _scene(np.random.default_rng(3))
    inst = export_instances(data["instance"], None, classes, {"shelf": "shelves", "book": "books"})
    out = _write_all(tmp_path, data, inst)
    array = np.load(out / "mask3d" / "train" / f"{SCENE}.npy")
    assert array.shape == (len(data["vertices"]), 12) and array.dtype == np.float32
    np.testing.assert_array_equal(array[:, :3], data["vertices"])
    np.testing.assert_array_equal(array[:, 3:6], data["colors"])
    np.testing.assert_array_equal(array[:, 6:9], data["normals"])
    unlabelled = data["instance"] < 0
    assert (array[unlabelled, 10] == 0).all() and (array[unlabelled, 11] == -1).all()
    assert set(array[~unlabelled, 10].astype(int)) <= set(BENCHMARK_CLASS_IDS)

    loaded = load_mask3d(out / "mask3d")[SCENE]
    assert len(loaded["labels"]) == inst.n_instances  # none filtered out as wall / floor
    assert loaded["labels"].tolist() == [BENCHMARK_CLASS_IDS.index(c) for c in inst.nyu40]
    for k, mask in enumerate(loaded["masks"]):
        np.testing.assert_array_equal(mask, inst.point_instance == k)


@pytest.mark.parametrize("classes", [None, BOX_LABELS])
def test_mmdet3d_files_pass_oneformer3ds_pipeline(tmp_path, classes):
    data = _scene(np.random.default_rng(4))
    inst = export_instances(data["instance"], None, classes, {"shelf": "shelves", "book": "books"})
    out = _write_all(tmp_path, data, inst)
    points = np.fromfile(out / "mmdet3d" / "points" / f"{SCENE}.bin", np.float32).reshape(-1, 6)
    np.testing.assert_array_equal(points, np.column_stack([data["vertices"], data["colors"]]).astype(np.float32))
    instance = np.fromfile(out / "mmdet3d" / "instance_mask" / f"{SCENE}.bin", np.int64)
    semantic = np.fromfile(out / "mmdet3d" / "semantic_mask" / f"{SCENE}.bin", np.int64)
    unlabelled = data["instance"] < 0
    assert (instance[unlabelled] == 0).all() and (semantic[unlabelled] == 0).all()  # ScanNet's "unannotated"

    loaded = load_mmdet3d(out / "mmdet3d")[SCENE]
    assert len(loaded["labels"]) == inst.n_instances
    assert loaded["labels"].tolist() == [BENCHMARK_CLASS_IDS.index(c) for c in inst.nyu40]
    for k, mask in enumerate(loaded["masks"]):
        np.testing.assert_array_equal(mask, inst.point_instance == k)
    assert loaded["spmasks"].any(axis=1).all()
    info = pickle.loads((out / "mmdet3d" / "scannet_oneformer3d_infos_train.pkl").read_bytes())["data_list"][0]
    assert [b["bbox_label_3d"] for b in info["instances"]] == loaded["labels"].tolist()


def test_other_class_none_leaves_non_benchmark_boxes_to_the_consumers_rules(tmp_path):
    data = _scene(np.random.default_rng(5))
    inst = export_instances(data["instance"], None, BOX_LABELS, {"shelf": "shelves", "book": "books"}, other_class=None)
    assert inst.source_id.tolist() == [0, 2, 3, 5, 6]
    assert inst.nyu40.tolist() == [3, 5, 24, 39, 23]  # cabinet, chair, refrigerator, otherfurniture, books
    out = _write_all(tmp_path, data, inst)
    assert load_spformer(out / "spformer")[SCENE]["labels"].tolist() == [0, 2, 12, 17]  # books dropped
    assert load_mask3d(out / "mask3d")[SCENE]["labels"].tolist() == [0, 2, 12, 17, MASK3D_CLASS_IGNORE]
    masks, labels, _ = read_benchmark_predictions(out / "scannet" / f"{SCENE}.txt", out / "scannet", len(data["vertices"]), 0)
    assert labels.tolist() == [3, 5, 24, 39]


# ----------------------------------------------------------------------------------------------
# ScanNet benchmark


def _gt_and_prediction(rng, n=3000, k=7):
    """Benchmark GT values (one void class: lamp, 35) and a noisy per-point prediction with scores."""
    gt = rng.integers(-1, k, n)
    classes = np.array([3, 5, 7, 35, 39, 24, 5])[:k]
    values = np.where(gt >= 0, classes[np.maximum(gt, 0)] * 1000 + gt + 1, 0)
    pred = gt.copy()
    flip = rng.random(n) < 0.2
    pred[flip] = rng.integers(-1, k + 2, flip.sum())
    return values, pred, rng.random(k + 2)


def test_benchmark_txt_scores_the_same_ap_as_the_hdf5_labels(tmp_path):
    values, pred, scores = _gt_and_prediction(np.random.default_rng(0))
    inst = export_instances(pred, scores)  # class-agnostic
    summary = write_scannet_benchmark(tmp_path / "scannet", SCENE, inst)
    # ours: class-agnostic AP of the HDF5 labels, with the benchmark's void classes
    gt_instance, gt_names = benchmark_ground_truth(values)
    direct = instance_ap_from_labels(gt_instance, gt_names, pred, scores, ignore_labels=["void"])
    # the exported txt through the script's class filtering, against class-agnostic ground truth
    masks, labels, read_scores = read_benchmark_predictions(summary, tmp_path / "scannet", len(values))
    sizes = np.bincount(inst.point_instance[inst.point_instance >= 0])
    assert len(masks) == np.sum(sizes >= 100) < inst.n_instances  # the script skips masks under 100 vertices, as we do
    assert set(labels) == {AGNOSTIC_NYU40_ID}
    agnostic_instance, agnostic_names = benchmark_ground_truth(class_agnostic_ground_truth(values))
    assert set(agnostic_names) == {f"class{AGNOSTIC_NYU40_ID}", "void"}
    exported = instance_ap(agnostic_instance, agnostic_names, masks, read_scores, ignore_labels=["void"])
    assert 0 < direct.ap < 1
    assert (exported.ap, exported.ap50, exported.ap25) == (direct.ap, direct.ap50, direct.ap25)
    # our own reader agrees with the script's
    ours, our_labels, our_scores = read_scannet_benchmark(summary)
    kept = ours.sum(axis=1) >= 100
    np.testing.assert_array_equal(ours[kept], masks)
    np.testing.assert_allclose(our_scores[kept], read_scores)

    # issue 15: label id 1 (wall) is not a benchmark class, so the script scored nothing
    summary.write_text(summary.read_text().replace(f" {AGNOSTIC_NYU40_ID} ", " 1 "))
    assert len(read_benchmark_predictions(summary, tmp_path / "scannet", len(values))[0]) == 0


def test_benchmark_txt_of_boxes_carries_their_classes(tmp_path):
    data = _scene(np.random.default_rng(6))
    inst = export_instances(data["instance"], np.arange(7) / 7, BOX_LABELS, {"shelf": "shelves", "book": "books"})
    summary = write_scannet_benchmark(tmp_path, SCENE, inst)
    lines = summary.read_text().splitlines()
    assert all(len(line.split(" ")) == 3 for line in lines)
    masks, labels, scores = read_benchmark_predictions(summary, tmp_path, len(data["vertices"]), 0)
    assert labels.tolist() == [BOX_NYU40[i] for i in inst.source_id]
    np.testing.assert_allclose(scores, np.arange(7)[inst.source_id] / 7, atol=1e-6)
    # a re-export with fewer instances leaves no stale mask file behind
    write_scannet_benchmark(tmp_path, SCENE, export_instances(np.where(data["instance"] == 0, 0, -1)))
    assert len(list((tmp_path / "predicted_masks").iterdir())) == 1


# ----------------------------------------------------------------------------------------------
# A demo-like scene through the command, and several scenes collected into one dataset


def _n_points(folder) -> int:
    from pipeline.io.artifacts import read_artifact

    return len(read_artifact(folder / "scene.h5", "scene")["vertices"])


def _write_labels(folder, point_instance, classes, mode):
    scores = np.linspace(1.0, 0.5, max(len(classes), 1))[: len(classes)].astype(np.float32)
    write_artifact(folder / "pseudo_labels.h5", "pseudo_labels",
                   {"point_instance": point_instance.astype(np.int32), "instance_score": scores,
                    "instance_class": np.asarray(classes, dtype=str)}, attrs={"mode": mode})


@pytest.fixture(scope="module")
def room_exports(tmp_path_factory):
    """Two generated rooms (as the demo makes them), one with box-mode labels, one class-agnostic."""
    from learning.train.helpers import room_scene, write_room_artifacts

    root = tmp_path_factory.mktemp("rooms")
    folders = {}
    for seed, mode in ((0, "box"), (1, "unsupervised")):
        folder = write_room_artifacts(root / f"room{seed}", seed=seed, preset="tiny")
        scene, _, gt_box = room_scene(seed, "tiny")
        from pipeline.io.artifacts import read_artifact

        labels = read_artifact(folder / "scene.h5", "scene")["boxes/label"]
        classes = list(labels) if mode == "box" else ["object"] * len(labels)
        _write_labels(folder, gt_box, classes, mode)
        run_export(folder / "scene.h5", folder / "superpoints.h5", folder / "pseudo_labels.h5", folder / "export")
        folders[f"room{seed}"] = (folder, gt_box, classes)
    return root, folders


def test_room_exports_pass_every_consumer(room_exports):
    root, folders = room_exports
    for scene, (folder, gt_box, classes) in folders.items():
        out = folder / "export"
        n_instances = len(np.unique(gt_box[gt_box >= 0]))
        assert all(p.is_file() for p in export_paths(out, scene).values())
        assert not list(out.rglob(".*.tmp"))  # every write was renamed into place
        for loaded in (load_spformer(out / "spformer"), load_mask3d(out / "mask3d"), load_mmdet3d(out / "mmdet3d")):
            assert list(loaded) == [scene]
            assert len(loaded[scene]["labels"]) == n_instances  # every pseudo-instance survives
            if "spmasks" in loaded[scene]:
                assert loaded[scene]["spmasks"].any(axis=1).all()
        masks, labels, _ = read_benchmark_predictions(out / "scannet" / f"{scene}.txt", out / "scannet", len(gt_box), 0)
        assert len(masks) == n_instances
        table = (out / "instances.tsv").read_text().splitlines()
        assert len(table) == n_instances + 1
        if classes[0] == "object":
            assert set(labels) == {AGNOSTIC_NYU40_ID}
        else:  # the demo's names: table, chair, cabinet are benchmark classes; shelf, box, book, cup are not
            expected = {"table": 7, "chair": 5, "cabinet": 3}
            assert labels.tolist() == [expected.get(classes[i], 39) for i in np.unique(gt_box[gt_box >= 0])]


def test_collected_exports_are_one_dataset_per_consumer(room_exports, tmp_path):
    root, folders = room_exports
    dataset = tmp_path / "dataset"
    counts = collect_exports([folder / "export" for folder, _, _ in folders.values()], dataset)
    assert counts == {"scannet": 2, "spformer": 2, "mask3d": 2, "mmdet3d": 2}
    for loaded in (load_spformer(dataset / "spformer"), load_mask3d(dataset / "mask3d"), load_mmdet3d(dataset / "mmdet3d")):
        assert sorted(loaded) == ["room0", "room1"]
    for scene in ("room0", "room1"):
        assert (dataset / "scannet" / f"{scene}.txt").is_file()
    with pytest.raises(ValueError, match="the same scene exported twice"):
        collect_exports([folders["room0"][0] / "export"] * 2, tmp_path / "twice")


def test_command_line_exports_and_collects(room_exports, tmp_path, capsys):
    root, folders = room_exports
    folder = folders["room0"][0]
    assert cli_main(["export", str(folder / "scene.h5"), str(folder / "superpoints.h5"),
                     str(folder / "pseudo_labels.h5"), "--out", str(tmp_path / "one"), "--other-class", "none",
                     "--class-map", "box=otherprop"]) == 0
    assert "spformer" in capsys.readouterr().out
    labels = read_benchmark_predictions(tmp_path / "one" / "scannet" / "room0.txt", tmp_path / "one" / "scannet",
                                        _n_points(folder), 0)[1]
    assert set(labels) <= set(BENCHMARK_CLASS_IDS) and 39 not in labels  # non-benchmark boxes kept their ids
    assert cli_main(["export", "--collect", str(tmp_path / "one"), "--out", str(tmp_path / "all")]) == 0
    assert sorted(load_mmdet3d(tmp_path / "all" / "mmdet3d")) == ["room0"]


def test_export_logs_the_class_mapping(room_exports, tmp_path, caplog):
    folder = room_exports[1]["room0"][0]
    with caplog.at_level(logging.INFO):
        run_export(folder / "scene.h5", folder / "superpoints.h5", folder / "pseudo_labels.h5", tmp_path)
    assert "shelf -> otherfurniture" in caplog.text and "table -> table" in caplog.text


# ----------------------------------------------------------------------------------------------
# Coloured PLY


def test_colored_ply_gives_one_colour_per_instance(tmp_path):
    instance = np.array([0, 0, 1, 2, -1, 2])
    ply = read_ply(write_colored_ply(tmp_path / "c.ply", np.zeros((6, 3)), instance))
    colors = [tuple(c) for c in ply.colors]
    assert colors[0] == colors[1] and colors[3] == colors[5]
    assert len({colors[0], colors[2], colors[3], colors[4]}) == 4
    assert colors[4] == (160, 160, 160)
    assert len({tuple(c) for c in label_colors(np.arange(50))}) == 50  # distinct for many instances


def test_scene_without_instances_exports_empty_files(tmp_path):
    data = _scene(np.random.default_rng(7))
    inst = export_instances(np.full(len(data["vertices"]), -1), np.zeros(0), np.zeros(0, str))
    out = _write_all(tmp_path, data, inst)
    assert (out / "scannet" / f"{SCENE}.txt").read_text() == ""
    assert len(load_spformer(out / "spformer")[SCENE]["labels"]) == 0
    assert len(load_mask3d(out / "mask3d")[SCENE]["labels"]) == 0
    assert len(load_mmdet3d(out / "mmdet3d")[SCENE]["labels"]) == 0
