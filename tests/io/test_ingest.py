"""Scene ingest and its reader errors, on small hand-built scenes in ScanNet layout."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.io.artifacts import read_artifact
from pipeline.cli import main as cli_main
from pipeline.commands.ingest import run_ingest
from pipeline.errors import InputError
from pipeline.io.ingest import box_instance_positions, ingest_scene
from pipeline.io.nyu40 import SCANNET18_IDS
from pipeline.io.ply import write_ply

K = np.array([[100.0, 0, 31.5, 0], [0, 100.0, 23.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def _grid_mesh(n=10, z=0.0):
    xs, ys = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    vertices = np.stack([xs.ravel(), ys.ravel(), np.full(n * n, z)], 1)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, (i + 1) * n + j, (i + 1) * n + j + 1, i * n + j + 1
            faces += [(a, b, c), (a, c, d)]
    return vertices, np.asarray(faces)


def make_scene(root, name="scene0000_00", n_frames=3, color_size=(64, 48), depth_size=(64, 48), mesh=True, depth_intrinsic=True):
    scene = root / name
    for folder in ("color", "depth", "pose", "intrinsic"):
        (scene / folder).mkdir(parents=True)
    for i in range(n_frames):
        Image.fromarray(np.full((color_size[1], color_size[0], 3), 90 + i, np.uint8)).save(scene / "color" / f"{i}.jpg")
        Image.fromarray(np.full((depth_size[1], depth_size[0]), 1500, np.uint16)).save(scene / "depth" / f"{i}.png")
        pose = np.eye(4)
        pose[:3, 3] = [0.5, 0.5, -1.5 + 0.1 * i]
        np.savetxt(scene / "pose" / f"{i}.txt", pose)
    np.savetxt(scene / "intrinsic" / "intrinsic_color.txt", K)
    if depth_intrinsic:
        np.savetxt(scene / "intrinsic" / "intrinsic_depth.txt", K)
    if mesh:
        vertices, faces = _grid_mesh()
        colors = np.full((len(vertices), 3), 200, np.uint8)
        write_ply(scene / f"{name}_vh_clean_2.ply", vertices, colors, faces)
    return scene


def test_ingest_handmade_scene(tmp_path):
    scene = make_scene(tmp_path)
    out = run_ingest(scene, tmp_path / "out" / "scene.h5")
    art = read_artifact(out, "scene", required=["vertices", "faces", "normals", "frames/pose"])
    assert art["vertices"].shape == (100, 3) and art["faces"].shape == (162, 3)
    np.testing.assert_allclose(np.abs(art["normals"][:, 2]), 1.0, atol=1e-6)  # a flat grid in z = 0
    assert art["frames/id"].tolist() == [0, 1, 2] and art["frames/valid"].all()
    assert art["frames/color_size"].tolist() == [64, 48]
    assert art.attrs["kind"] == "mesh" and art.attrs["n_invalid_poses"] == 0
    assert not art.attrs["has_gt"] and "boxes/min" not in art


def test_infinite_pose_is_skipped_and_counted(tmp_path, caplog):
    scene = make_scene(tmp_path, n_frames=4)
    np.savetxt(scene / "pose" / "2.txt", np.full((4, 4), -np.inf))
    art = read_artifact(run_ingest(scene, tmp_path / "scene.h5"), "scene")
    assert art["frames/valid"].tolist() == [True, True, False, True]
    assert art.attrs["n_invalid_poses"] == 1
    assert "1 of 4 frames have invalid" in caplog.text


def test_missing_pose_file_names_the_folder_and_frame(tmp_path):
    scene = make_scene(tmp_path)
    (scene / "pose" / "1.txt").unlink()
    with pytest.raises(InputError, match=r"pose: frame ids differ from color/: lacks 1 frame id\(s\) \[1\]"):
        ingest_scene(scene)


def test_mismatched_frame_ids(tmp_path):
    scene = make_scene(tmp_path)
    Image.fromarray(np.zeros((48, 64), np.uint16)).save(scene / "depth" / "7.png")
    with pytest.raises(InputError, match=r"depth: frame ids differ.*has 1 frame id\(s\) \[7\] that color/ lacks"):
        ingest_scene(scene)


def test_truncated_png_is_named(tmp_path):
    scene = make_scene(tmp_path)
    path = scene / "depth" / "1.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(InputError, match=r"depth/1\.png: unreadable image"):
        ingest_scene(scene)


def _truncated_noise_jpeg(path, n_bytes=2000):
    """A colour frame whose JPEG data stops after ``n_bytes``: the header is intact (size and
    Image.verify() pass), the pixels do not decode."""
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=95)
    data = path.read_bytes()
    assert len(data) > n_bytes
    path.write_bytes(data[:n_bytes])
    with Image.open(path) as image:  # what verify() alone would have accepted
        image.verify()


def test_truncated_jpeg_colour_frame_is_named(tmp_path):
    scene = make_scene(tmp_path)
    _truncated_noise_jpeg(scene / "color" / "2.jpg")
    with pytest.raises(InputError, match=r"color/2\.jpg: unreadable image \(image file is truncated"):
        ingest_scene(scene)
    # verify_images: first checks only the first frame's images (documented); frame 0 is intact.
    ingest_scene(scene, {"verify_images": "first"})


def test_truncated_redkitchen_jpeg_stops_ingest(redkitchen_dir, tmp_path):
    """The real case: a copy of redkitchen (links; frames 0-9) with color/5.jpg cut to 2,000 bytes."""
    scene = tmp_path / "redkitchen"
    for folder in ("color", "depth", "pose"):
        (scene / folder).mkdir(parents=True)
        for source in (redkitchen_dir / folder).iterdir():
            if source.stem.isdigit() and int(source.stem) < 10:
                (scene / folder / source.name).symlink_to(source)
    (scene / "intrinsic").symlink_to(redkitchen_dir / "intrinsic")
    (scene / "redkitchen_vh_clean_2.ply").symlink_to(redkitchen_dir / "redkitchen_vh_clean_2.ply")
    (scene / "color" / "5.jpg").unlink()
    (scene / "color" / "5.jpg").write_bytes((redkitchen_dir / "color" / "5.jpg").read_bytes()[:2000])
    with pytest.raises(InputError, match=r"redkitchen/color/5\.jpg: unreadable image \(image file is truncated"):
        run_ingest(scene, tmp_path / "scene.h5", {"verify_images": "all"})
    assert not (tmp_path / "scene.h5").exists()


def test_missing_intrinsics(tmp_path):
    scene = make_scene(tmp_path)
    (scene / "intrinsic" / "intrinsic_color.txt").unlink()
    with pytest.raises(InputError, match=r"intrinsic_color\.txt: color intrinsics are missing"):
        ingest_scene(scene)


def test_malformed_pose_is_named(tmp_path):
    scene = make_scene(tmp_path)
    (scene / "pose" / "0.txt").write_text("1 0 0\n0 1 0\n")
    with pytest.raises(InputError, match=r"pose/0\.txt: expected 16 numbers"):
        ingest_scene(scene)


def test_colour_depth_size_mismatch_scales_intrinsics(tmp_path):
    scene = make_scene(tmp_path, color_size=(128, 96), depth_size=(64, 48), depth_intrinsic=False)
    art = read_artifact(run_ingest(scene, tmp_path / "scene.h5"), "scene")
    depth_k = art["intrinsics/depth"]
    assert depth_k[0, 0] == pytest.approx(50.0) and depth_k[1, 1] == pytest.approx(50.0)
    # pixel centres map onto each other: (c + 0.5) * s - 0.5
    assert depth_k[0, 2] == pytest.approx((31.5 + 0.5) * 0.5 - 0.5)
    assert art["frames/depth_size"].tolist() == [64, 48] and art["frames/color_size"].tolist() == [128, 96]


def test_point_cloud_scene_without_frames(tmp_path):
    scene = tmp_path / "area_1"
    scene.mkdir()
    rng = np.random.default_rng(0)
    floor = np.c_[rng.uniform(0, 4, (500, 2)), np.zeros(500)]
    ceiling_box = np.c_[rng.uniform(0, 4, (500, 2)), np.full(500, 3.0)]
    write_ply(scene / "points.ply", np.r_[floor, ceiling_box], rng.integers(0, 255, (1000, 3)).astype(np.uint8))
    art = read_artifact(run_ingest(scene, tmp_path / "scene.h5"), "scene")
    assert art.attrs["kind"] == "points" and art.attrs["n_frames"] == 0 and "faces" not in art
    # normals point into the room: up on the floor, down on the ceiling
    assert np.all(art["normals"][:500, 2] > 0.99) and np.all(art["normals"][500:, 2] < -0.99)


def test_empty_and_meshless_scenes(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty scene"):
        ingest_scene(tmp_path / "empty")
    with pytest.raises(InputError, match="scene folder does not exist"):
        ingest_scene(tmp_path / "absent")
    scene = make_scene(tmp_path, mesh=False)
    with pytest.raises(InputError, match="has frames but no mesh.*fuse_mesh"):
        ingest_scene(scene)
    write_ply(scene / f"{scene.name}_vh_clean_2.ply", np.zeros((0, 3)), faces=np.zeros((0, 3), int))
    with pytest.raises(InputError, match="no vertices"):
        ingest_scene(scene)


def test_nan_vertices_are_an_error(tmp_path):
    scene = make_scene(tmp_path)
    vertices, faces = _grid_mesh()
    vertices[3] = np.nan
    write_ply(scene / f"{scene.name}_vh_clean_2.ply", vertices, faces=faces)
    with pytest.raises(InputError, match="1 vertices have non-finite"):
        ingest_scene(scene)


def _write_gt(scene, name, seg_indices, groups):
    (scene / f"{name}_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"segIndices": seg_indices}))
    (scene / f"{name}.aggregation.json").write_text(json.dumps({"segGroups": groups}))


def test_scannet_ground_truth_and_derived_boxes(tmp_path):
    name = "scene0000_00"
    scene = make_scene(tmp_path, name)
    seg = [0] * 50 + [1] * 30 + [2] * 20  # segment per vertex (vertex order = row-major grid)
    groups = [
        {"id": 0, "objectId": 0, "segments": [0], "label": "floor"},
        {"id": 1, "objectId": 1, "segments": [1], "label": "chair"},
    ]  # segment 2 is unlabelled
    _write_gt(scene, name, seg, groups)
    art = read_artifact(run_ingest(scene, tmp_path / "scene.h5"), "scene")
    instance = art["gt/instance"]
    assert (instance[:50] == 0).all() and (instance[50:80] == 1).all() and (instance[80:] == -1).all()
    assert art["gt/instance_label"].tolist() == ["floor", "chair"]
    # raw names that are all NYU40 names give the classes; ids are the positions
    assert art["gt/instance_nyu40"].tolist() == [2, 5] and art["gt/instance_id"].tolist() == [0, 1]
    assert art.attrs["gt_source"] == "aggregation.json" and art.attrs["gt_nyu40_source"] == "raw names"
    chair = art["vertices"][50:80]
    np.testing.assert_allclose(art["gt/box_min"][1], chair.min(0), atol=1e-6)
    # ground truth never becomes boxes unless asked for
    assert "boxes/min" not in art and art.attrs["boxes_source"] == ""
    oracle = read_artifact(run_ingest(scene, tmp_path / "oracle.h5", {"boxes_from_ground_truth": True}), "scene")
    # the GT carries NYU40 ids: oracle boxes for the benchmark's 18 classes (chair), not the floor;
    # the chair's box refers back to its instance
    assert oracle["boxes/label"].tolist() == ["chair"] and oracle["boxes/instance"].tolist() == [1]
    assert oracle.attrs["boxes_source"] == "ground_truth (oracle)"


def test_oracle_boxes_need_ground_truth_and_replace_boxes_json(tmp_path, caplog):
    scene = make_scene(tmp_path)
    with pytest.raises(InputError, match="boxes_from_ground_truth is set but the scene has no ground truth"):
        ingest_scene(scene, {"boxes_from_ground_truth": True})
    name = scene.name
    (scene / f"{name}.txt").write_text("\n".join(["5012"] * 40 + ["1001"] * 60) + "\n")
    boxes = {"boxes": [{"center": [0.5, 0.5, 0.0], "size": [1.0, 1.0, 0.2], "label": "table"}]}
    (scene / "boxes.json").write_text(json.dumps(boxes))
    art = read_artifact(run_ingest(scene, tmp_path / "s.h5", {"boxes_from_ground_truth": True}), "scene")
    assert art["boxes/label"].tolist() == ["chair"] and art.attrs["boxes_source"] == "ground_truth (oracle)"
    assert "boxes.json is ignored" in caplog.text and "ORACLE boxes" in caplog.text


def test_boxes_json_overrides_and_is_validated(tmp_path):
    scene = make_scene(tmp_path)
    boxes = {"boxes": [{"center": [0.5, 0.5, 0.0], "size": [1.0, 1.0, 0.2], "label": "table"}]}
    (scene / "boxes.json").write_text(json.dumps(boxes))
    art = read_artifact(run_ingest(scene, tmp_path / "scene.h5"), "scene")
    np.testing.assert_allclose(art["boxes/min"], [[0, 0, -0.1]])
    assert art["boxes/instance"].tolist() == [-1] and art.attrs["boxes_source"] == "boxes.json"
    (scene / "boxes.json").write_text(json.dumps({"boxes": [{"center": [0, 0], "size": [1, 1, 1]}]}))
    with pytest.raises(InputError, match=r"boxes\.json: box 0"):
        ingest_scene(scene)


def test_segs_without_aggregation_is_not_ground_truth(tmp_path):
    name = "scene0000_00"
    scene = make_scene(tmp_path, name)
    (scene / f"{name}_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"segIndices": [0] * 100}))
    assert "gt" not in ingest_scene(scene).arrays
    (scene / f"{name}.aggregation.json").write_text(json.dumps({"segGroups": []}))
    (scene / f"{name}_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"segIndices": [0] * 7}))
    with pytest.raises(InputError, match="segIndices has 7 entries but the mesh has 100 vertices"):
        ingest_scene(scene)


def test_cli_reports_errors_with_exit_code_2(tmp_path, capsys):
    assert cli_main(["ingest", str(tmp_path / "absent"), "--out", str(tmp_path / "s.h5")]) == 2
    assert "scene folder does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()


def test_redkitchen_ingests(redkitchen_dir, tmp_path):
    art = read_artifact(run_ingest(redkitchen_dir, tmp_path / "scene.h5"), "scene")
    assert art.attrs["n_frames"] == 100 and art["frames/valid"].all()
    assert art["vertices"].shape == (89209, 3) and art["faces"].shape == (164200, 3)
    assert art["frames/color_size"].tolist() == [640, 480]
    np.testing.assert_allclose(art["intrinsics/color"][0, 0], 585.0)


# ---------------------------------------------------------------------------------------------
# Ground truth in the benchmark's txt format, NYU40 classes, boxes.json instance ids

SCENE0000 = Path(__file__).resolve().parents[3] / "shared" / "data" / "scene0000_00"


def test_box_instance_ids_map_to_gt_positions():
    gt_instance_id = np.array([1, 4, 12, 4])  # id 4 twice (two classes): the first position
    assert box_instance_positions(np.array([12, 4, 9, -1, 1]), gt_instance_id).tolist() == [2, 1, -1, -1, 0]
    assert box_instance_positions(np.zeros(0, np.int32), gt_instance_id).tolist() == []


def test_benchmark_txt_ground_truth_and_boxes_by_instance_id(tmp_path, caplog):
    name = "scene0000_00"
    scene = make_scene(tmp_path, name)
    # 100 grid vertices: chair #12 (40), table #4 (30), unannotated (10), wall #1 (20)
    values = [5012] * 40 + [7004] * 30 + [0] * 10 + [1001] * 20
    (scene / f"{name}.txt").write_text("\n".join(map(str, values)) + "\n")
    boxes = {"boxes": [
        {"center": [0.5, 0.5, 0.0], "size": [1.0, 1.0, 0.2], "label": "chair", "instance_id": 12},
        {"center": [0.5, 0.5, 0.0], "size": [1.0, 1.0, 0.2], "label": "table", "instance_id": 4},
        {"center": [0.5, 0.5, 0.0], "size": [1.0, 1.0, 0.2], "label": "lamp", "instance_id": 9},
        {"center": [0.5, 0.5, 0.0], "size": [1.0, 1.0, 0.2], "label": "box"},
    ]}
    (scene / "boxes.json").write_text(json.dumps(boxes))
    art = read_artifact(run_ingest(scene, tmp_path / "scene.h5"), "scene")
    assert art.attrs["has_gt"] and art.attrs["gt_source"] == f"{name}.txt"
    # instances in the order of their own ids 1, 4, 12
    assert art["gt/instance_id"].tolist() == [1, 4, 12]
    assert art["gt/instance_label"].tolist() == ["wall", "table", "chair"]
    assert art["gt/instance_nyu40"].tolist() == [1, 7, 5]
    assert art["gt/instance"].tolist() == [2] * 40 + [1] * 30 + [-1] * 10 + [0] * 20
    # boxes.json names txt instance ids; scene.h5 holds positions, -1 for an id the GT lacks
    assert art["boxes/instance"].tolist() == [2, 1, -1, -1]
    assert "1 box(es) name an instance_id the ground truth lacks (boxes [2])" in caplog.text


def test_bad_benchmark_txt_stops_ingest_naming_the_line(tmp_path):
    name = "scene0000_00"
    scene = make_scene(tmp_path, name)
    (scene / f"{name}.txt").write_text("0\n" * 99)
    with pytest.raises(InputError, match=rf"{name}\.txt: ends at line 99 but the scene has 100 vertices"):
        ingest_scene(scene)


def test_aggregation_raw_names_through_the_label_map(tmp_path, caplog):
    name = "scene0000_00"
    scene = make_scene(tmp_path, name)
    groups = [
        {"objectId": 0, "segments": [0], "label": "floor"},
        {"objectId": 3, "segments": [1], "label": "office chair"},
        {"objectId": 5, "segments": [2], "label": "mystery thing"},
    ]
    _write_gt(scene, name, [0] * 50 + [1] * 30 + [2] * 20, groups)
    art = read_artifact(run_ingest(scene, tmp_path / "raw.h5"), "scene")
    # "office chair" is no NYU40 name: without a label map no class is trusted
    assert art["gt/instance_nyu40"].tolist() == [-1, -1, -1]
    assert art.attrs["gt_source"] == "aggregation.json" and art.attrs["gt_nyu40_source"] == ""
    assert "no ingest.label_map and raw categories ['mystery thing', 'office chair'] are not NYU40 names" in caplog.text
    # positions are the instance ids for aggregation.json, whatever the objectIds
    assert art["gt/instance_id"].tolist() == [0, 1, 2]

    tsv = tmp_path / "scannetv2-labels.combined.tsv"
    tsv.write_text("id\traw_category\tcategory\tcount\tnyu40id\n1\tfloor\tfloor\t1\t2\n2\toffice chair\tchair\t1\t5\n")
    art = read_artifact(run_ingest(scene, tmp_path / "mapped.h5", {"label_map": str(tsv)}), "scene")
    assert art["gt/instance_nyu40"].tolist() == [2, 5, -1]
    assert art["gt/instance_label"].tolist() == ["floor", "office chair", "mystery thing"]
    assert art.attrs["gt_nyu40_source"] == f"label_map {tsv.name}"

    tsv.write_text("id\traw_category\tcategory\tcount\tnyu40id\n1\tfloor\tfloor\t1\tfloor\n")
    with pytest.raises(InputError, match=r"scannetv2-labels\.combined\.tsv: line 2: nyu40id 'floor'"):
        ingest_scene(scene, {"label_map": str(tsv)})


@pytest.fixture(scope="module")
def scene0000_h5(tmp_path_factory):
    if not SCENE0000.is_dir():
        pytest.skip(f"real labelled scan not found at {SCENE0000} (only present beside the repo in CI)")
    return run_ingest(SCENE0000, tmp_path_factory.mktemp("scene0000") / "scene.h5")


def test_scene0000_00_ingests_its_txt_ground_truth(scene0000_h5):
    art = read_artifact(scene0000_h5, "scene")
    assert art.attrs["kind"] == "points" and art["vertices"].shape == (81369, 3)
    assert art.attrs["gt_source"] == "scene0000_00.txt" and art.attrs["boxes_source"] == "boxes.json"
    nyu40 = art["gt/instance_nyu40"]
    assert len(nyu40) == 67 and np.count_nonzero(np.isin(nyu40, SCANNET18_IDS)) == 27
    assert np.count_nonzero(art["gt/instance"] == -1) == 4357
    # every box's instance_id lands on the GT instance of the same class
    boxes_instance = art["boxes/instance"]
    assert len(boxes_instance) == 27 and np.all(boxes_instance >= 0)
    assert art["gt/instance_label"][boxes_instance].tolist() == art["boxes/label"].tolist()
    assert np.all(np.isin(nyu40[boxes_instance], SCANNET18_IDS))
