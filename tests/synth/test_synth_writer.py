"""The written scene folder: ScanNet layout, parseable files, consistent ground truth, atomic writes."""

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.commands.synth import run_synth
from pipeline.errors import InputError
from pipeline.io.ply import read_ply
from pipeline.synth import default_intrinsic, generate_room, write_synthetic_scene
from pipeline.synth.render import RoomRenderer

SEED, FRAMES, SIZE = 5, 6, (160, 120)


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "scene_demo"
    assert write_synthetic_scene(out, seed=SEED, n_frames=FRAMES, image_size=SIZE, preset="tiny", invalid_poses=2) == out
    return out


def _load(path):
    with open(path) as handle:
        return json.load(handle)


def test_layout_is_complete(scene_dir):
    names = {p.name for p in scene_dir.iterdir()}
    assert names == {"color", "depth", "pose", "instance", "intrinsic", "scene_demo_vh_clean_2.ply",
                     "scene_demo_vh_clean_2.0.010000.segs.json", "scene_demo.aggregation.json", "boxes.json",
                     "synth_meta.json"}
    for sub, ext in (("color", "jpg"), ("depth", "png"), ("pose", "txt"), ("instance", "png")):
        assert sorted(p.name for p in (scene_dir / sub).iterdir()) == sorted(f"{i}.{ext}" for i in range(FRAMES))
    assert not any(p.name.startswith(".") for p in scene_dir.parent.iterdir())  # no temporary leftovers


def test_images_have_the_right_types_and_agree(scene_dir):
    n_instances = len(_load(scene_dir / "synth_meta.json")["labels"])
    for i in range(FRAMES):
        color = np.array(Image.open(scene_dir / "color" / f"{i}.jpg"))
        depth = Image.open(scene_dir / "depth" / f"{i}.png")
        instance = Image.open(scene_dir / "instance" / f"{i}.png")
        assert color.shape == (SIZE[1], SIZE[0], 3) and color.dtype == np.uint8
        assert depth.mode == "I;16" and instance.mode == "I;16"
        depth, instance = np.array(depth), np.array(instance)
        assert depth.shape == instance.shape == (SIZE[1], SIZE[0])
        assert np.array_equal(depth == 0, instance == 0)  # objectId + 1 exactly where depth has a reading
        assert instance.max() <= n_instances and 300 < np.median(depth[depth > 0]) < 6000


def test_poses_and_intrinsics_parse(scene_dir):
    meta = _load(scene_dir / "synth_meta.json")
    invalid = meta["invalid_frames"]
    assert len(invalid) == 2 and meta["seed"] == SEED and meta["n_frames"] == FRAMES
    for i in range(FRAMES):
        pose = np.loadtxt(scene_dir / "pose" / f"{i}.txt")
        assert pose.shape == (4, 4)
        if i in invalid:
            assert np.all(np.isneginf(pose))
        else:
            assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-6)
            assert np.allclose(pose[3], [0, 0, 0, 1])
    for name in ("intrinsic_color.txt", "intrinsic_depth.txt"):
        assert np.allclose(np.loadtxt(scene_dir / "intrinsic" / name), default_intrinsic(*SIZE))


def test_mesh_and_scannet_ground_truth_are_consistent(scene_dir):
    ply = read_ply(scene_dir / "scene_demo_vh_clean_2.ply")
    room = generate_room(SEED, "tiny")  # same seed -> the same mesh as the file
    assert np.array_equal(ply.vertices, room.vertices) and np.array_equal(ply.colors, room.colors)
    assert np.array_equal(ply.faces, room.faces)

    segs = _load(scene_dir / "scene_demo_vh_clean_2.0.010000.segs.json")
    assert set(segs) == {"params", "sceneId", "segIndices"}
    seg_indices = np.array(segs["segIndices"])
    assert len(seg_indices) == len(ply.vertices)

    aggregation = _load(scene_dir / "scene_demo.aggregation.json")
    assert {"sceneId", "appId", "segGroups", "segmentsFile"} <= set(aggregation)
    groups = aggregation["segGroups"]
    owner = {}
    for group in groups:
        assert group["id"] == group["objectId"] and isinstance(group["label"], str)
        for segment in group["segments"]:
            assert segment not in owner  # every segment belongs to exactly one group
            owner[segment] = group["objectId"]
    assert set(owner) == set(np.unique(seg_indices).tolist())
    instance = np.array([owner[s] for s in seg_indices])
    assert np.array_equal(instance, room.instance)

    boxes = _load(scene_dir / "boxes.json")["boxes"]
    labels = {g["objectId"]: g["label"] for g in groups}
    assert {b["instance_id"] for b in boxes} == {k for k, label in labels.items() if label not in ("floor", "wall")}
    for box in boxes:
        assert set(box) == {"center", "size", "label", "instance_id"} and box["label"] == labels[box["instance_id"]]
        points = ply.vertices[instance == box["instance_id"]]
        lo = np.subtract(box["center"], np.divide(box["size"], 2))
        hi = np.add(box["center"], np.divide(box["size"], 2))
        assert np.all(points >= lo - 1e-6) and np.all(points <= hi + 1e-6)


def test_existing_output_is_kept_unless_overwrite(scene_dir, tmp_path):
    with pytest.raises(InputError, match="already exists"):
        write_synthetic_scene(scene_dir, seed=SEED, n_frames=1, image_size=(32, 24), preset="tiny")
    out = tmp_path / "again"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    write_synthetic_scene(out, seed=1, n_frames=1, image_size=(32, 24), preset="tiny", overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "boxes.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]


def test_interrupted_run_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    calls = []

    def failing_render(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the job were killed mid-way
        return original(self, *args, **kwargs)

    original = RoomRenderer.render
    monkeypatch.setattr(RoomRenderer, "render", failing_render)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_scene(tmp_path / "scene_x", seed=0, n_frames=3, image_size=(32, 24), preset="tiny")
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="invalid_poses"):
        write_synthetic_scene(tmp_path / "s", seed=0, n_frames=2, image_size=(32, 24), preset="tiny", invalid_poses=3)
    with pytest.raises(ValueError, match="unknown synthetic scene key"):
        run_synth(tmp_path / "s", {"seed": 0, "rooms": 2})
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_a_scene(tmp_path, capsys):
    out = tmp_path / "cli_scene"
    code = main(["synth", "--seed", "2", "--out", str(out), "--preset", "tiny", "--frames", "2", "--width", "64",
                 "--height", "48", "--invalid-poses", "1"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    meta = _load(out / "synth_meta.json")
    assert meta["seed"] == 2 and meta["depth_size"] == [64, 48] and len(meta["invalid_frames"]) == 1
    assert main(["synth", "--seed", "2", "--out", str(out), "--preset", "tiny", "--frames", "1"]) == 2  # exists
