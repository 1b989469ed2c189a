"""features_2d / features_3d stages on a tiny hand-built scene (a floor seen from above)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.commands.features_2d import run_features_2d
from pipeline.commands.features_3d import run_features_3d
from pipeline.commands.ingest import run_ingest
from pipeline.commands.ncut import run_ncut
from pipeline.errors import InputError
from pipeline.io.ply import write_ply

COLOR_SIZE, DEPTH_SIZE = (80, 60), (40, 30)
K_COLOR = np.array([[60.0, 0, 39.5, 0], [0, 60.0, 29.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
K_DEPTH = np.array([[30.0, 0, 19.5, 0], [0, 30.0, 14.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
RED, BLUE = (200, 30, 30), (30, 40, 200)
HEIGHT = 1.5


def floor_mesh(n=31, size=1.6):
    xs, ys = np.meshgrid(np.linspace(-size / 2, size / 2, n), np.linspace(-size / 2, size / 2, n))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], 1).astype(np.float32)
    index = np.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.int32)
    colors = np.where(vertices[:, :1] < 0, RED, BLUE).astype(np.uint8)
    return vertices, faces, colors


def looking_down(x, y):
    pose = np.eye(4)
    pose[:3, :3] = np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]], float).T  # columns: camera x, y, z
    pose[:3, 3] = [x, y, HEIGHT]
    return pose


def render(pose, size, intrinsic):
    """Colour (red where world x < 0) and depth (the floor is HEIGHT below every camera)."""
    u, v = np.meshgrid(np.arange(size[0]), np.arange(size[1]))
    x_cam = (u - intrinsic[0, 2]) / intrinsic[0, 0] * HEIGHT
    world_x = pose[0, 3] + x_cam
    color = np.where(world_x[..., None] < 0, RED, BLUE).astype(np.uint8)
    depth = np.full((size[1], size[0]), int(HEIGHT * 1000), np.uint16)
    return color, depth


def make_scene(root, name="floor", poses=None, frames=True):
    scene = root / name
    scene.mkdir()
    vertices, faces, colors = floor_mesh()
    if not frames:
        write_ply(scene / "points.ply", vertices, colors=colors)
        return scene
    write_ply(scene / f"{name}_vh_clean_2.ply", vertices, colors=colors, faces=faces)
    for folder in ("color", "depth", "pose", "intrinsic"):
        (scene / folder).mkdir()
    np.savetxt(scene / "intrinsic" / "intrinsic_color.txt", K_COLOR)
    np.savetxt(scene / "intrinsic" / "intrinsic_depth.txt", K_DEPTH)
    for i, pose in enumerate(poses if poses is not None else [looking_down(-0.2, 0.0), looking_down(0.2, 0.1), looking_down(0.0, -0.1)]):
        color, _ = render(pose, COLOR_SIZE, K_COLOR)
        _, depth = render(pose, DEPTH_SIZE, K_DEPTH)
        Image.fromarray(color).save(scene / "color" / f"{i}.jpg", quality=95)
        Image.fromarray(depth).save(scene / "depth" / f"{i}.png")
        np.savetxt(scene / "pose" / f"{i}.txt", pose)
    return scene


def quadrant_superpoints(path, vertices):
    """Four superpoints: the floor's quadrants (0: x<0,y<0, 1: x>=0,y<0, 2: x<0,y>=0, 3: x>=0,y>=0)."""
    labels = ((vertices[:, 0] >= 0).astype(int) + 2 * (vertices[:, 1] >= 0)).astype(np.int32)
    adjacency = np.array([[0, 1], [0, 2], [1, 3], [2, 3]], np.int32)
    write_artifact(path, "superpoints", {"point_superpoint": labels, "adjacency": adjacency})
    return labels


@pytest.fixture
def floor(tmp_path):
    scene_dir = make_scene(tmp_path)
    scene_h5 = run_ingest(scene_dir, tmp_path / "scene.h5")
    labels = quadrant_superpoints(tmp_path / "superpoints.h5", read_artifact(scene_h5, "scene")["vertices"])
    return tmp_path, scene_h5, labels


def test_handcrafted_2d_features_separate_the_colours(floor):
    root, scene_h5, labels = floor
    out = run_features_2d(scene_h5, root / "superpoints.h5", root / "features_2d.h5", {"frame_step": 1, "device": "cpu"})
    art = read_artifact(out, "features_2d", required=["superpoint_features", "point_visibility"])
    assert not art.attrs["empty"] and art.attrs["n_frames_used"] == 3
    f = art["superpoint_features"]
    assert f.shape == (4, 64) and np.linalg.norm(f, axis=1) == pytest.approx(np.ones(4), abs=1e-5)
    similarity = f @ f.T
    # Quadrants 0 and 2 are red, 1 and 3 blue.
    assert similarity[0, 2] > 0.95 and similarity[1, 3] > 0.95
    assert similarity[0, 1] < similarity[0, 2] - 0.3
    visibility = art["point_visibility"]
    assert visibility.max() == 3 and (visibility > 0).mean() > 0.5
    assert art["superpoint_weight"].sum() == visibility.sum()


def test_killed_features_2d_job_resumes_from_its_saved_running_means(floor, monkeypatch):
    from pipeline.unscene3d import backproject

    root, scene_h5, _ = floor
    params = {"frame_step": 1, "device": "cpu", "batch_size": 1, "checkpoint_every": 1}
    reference = read_artifact(run_features_2d(scene_h5, root / "superpoints.h5", root / "reference.h5", params), "features_2d")
    real_add = backproject.Backprojector.add

    def dying_add(self, batch):
        if int(batch.frame_ids[0]) == 2:
            raise KeyboardInterrupt("killed")
        real_add(self, batch)

    out = root / "features_2d.h5"
    monkeypatch.setattr(backproject.Backprojector, "add", dying_add)
    with pytest.raises(KeyboardInterrupt):
        run_features_2d(scene_h5, root / "superpoints.h5", out, params)
    assert not out.exists() and (root / "features_2d.h5.resume" / "state.npz").is_file()
    monkeypatch.setattr(backproject.Backprojector, "add", real_add)
    resumed = read_artifact(run_features_2d(scene_h5, root / "superpoints.h5", out, params), "features_2d")
    assert resumed.attrs["resumed_from_frame"] == 2 and reference.attrs["resumed_from_frame"] == -1
    for name in ("superpoint_features", "superpoint_weight", "point_visibility", "frames_used"):
        assert np.array_equal(resumed[name], reference[name]), name
    assert not (root / "features_2d.h5.resume").exists()


def test_frame_step_samples_valid_frames(floor):
    root, scene_h5, _ = floor
    out = run_features_2d(scene_h5, root / "superpoints.h5", root / "f.h5", {"frame_step": 2, "device": "cpu"})
    assert read_artifact(out, "features_2d")["frames_used"].tolist() == [0, 2]


def test_scene_with_frames_but_no_valid_pose_is_an_error(tmp_path):
    bad = np.full((4, 4), -np.inf)
    scene_dir = make_scene(tmp_path, poses=[bad, bad])
    scene_h5 = run_ingest(scene_dir, tmp_path / "scene.h5")
    quadrant_superpoints(tmp_path / "superpoints.h5", read_artifact(scene_h5, "scene")["vertices"])
    with pytest.raises(InputError, match="has 2 frames but none with a valid pose"):
        run_features_2d(scene_h5, tmp_path / "superpoints.h5", tmp_path / "f.h5")
    assert not (tmp_path / "f.h5").exists()


def test_frames_that_see_no_point_are_an_error(floor):
    root, scene_h5, _ = floor
    with pytest.raises(InputError, match="none of the 3 sampled frames sees any scene point"):
        run_features_2d(scene_h5, root / "superpoints.h5", root / "f.h5", {"frame_step": 1, "depth_scale": 1.0})


def test_point_cloud_scene_takes_its_colour_modality_from_the_point_colours(tmp_path):
    scene_dir = make_scene(tmp_path, frames=False)
    scene_h5 = run_ingest(scene_dir, tmp_path / "scene.h5")
    labels = quadrant_superpoints(tmp_path / "superpoints.h5", read_artifact(scene_h5, "scene")["vertices"])
    f2d = run_features_2d(scene_h5, tmp_path / "superpoints.h5", tmp_path / "features_2d.h5")
    art = read_artifact(f2d, "features_2d")
    assert not art.attrs["empty"] and art.attrs["source"] == "point_colors" and art.attrs["n_frames_used"] == 0
    f = art["superpoint_features"]
    assert f.shape == (4, 2048) and art["superpoint_weight"].tolist() == np.bincount(labels).tolist()
    similarity = f @ f.T  # quadrants 0 and 2 are red, 1 and 3 blue
    assert similarity[0, 2] > 0.95 and similarity[1, 3] > 0.95 and similarity[0, 1] < similarity[0, 2] - 0.3
    f3d = run_features_3d(scene_h5, tmp_path / "superpoints.h5", tmp_path / "features_3d.h5")
    assert read_artifact(f3d, "features_3d")["superpoint_features"].shape == (4, 2048)
    ncut = run_ncut(tmp_path / "superpoints.h5", f2d, f3d, tmp_path / "ncut.h5", {"min_segments": 1, "structure": "keep"})
    assert read_artifact(ncut, "ncut").attrs["modality"] == "both"
    assert read_artifact(ncut, "ncut").attrs["color_source"] == "point_colors"


@pytest.mark.parametrize("grey", [False, True])
def test_point_cloud_without_usable_colours_gets_an_empty_artifact_and_ncut_uses_3d(tmp_path, grey):
    scene_dir = make_scene(tmp_path, frames=False)
    if grey:  # what ingest makes of a cloud without colours: one grey for every point
        vertices, _, colors = floor_mesh()
        write_ply(scene_dir / "points.ply", vertices, colors=np.full_like(colors, 128))
    scene_h5 = run_ingest(scene_dir, tmp_path / "scene.h5")
    labels = quadrant_superpoints(tmp_path / "superpoints.h5", read_artifact(scene_h5, "scene")["vertices"])
    params = {} if grey else {"point_colors": False}
    f2d = run_features_2d(scene_h5, tmp_path / "superpoints.h5", tmp_path / "features_2d.h5", params)
    art = read_artifact(f2d, "features_2d")
    assert art.attrs["empty"] and art["superpoint_features"].shape == (4, 0)
    assert ("no colours" if grey else "point_colors is off") in art.attrs["empty_reason"]
    assert art["point_visibility"].shape == labels.shape
    f3d = run_features_3d(scene_h5, tmp_path / "superpoints.h5", tmp_path / "features_3d.h5")
    ncut = run_ncut(tmp_path / "superpoints.h5", f2d, f3d, tmp_path / "ncut.h5", {"min_segments": 1, "structure": "keep"})
    assert read_artifact(ncut, "ncut").attrs["modality"] == "3d"


def test_features_3d_flags_the_floor_as_room_structure(floor):
    root, scene_h5, labels = floor
    art = read_artifact(run_features_3d(scene_h5, root / "superpoints.h5", root / "f3.h5"), "features_3d",
                        required=["superpoint_structure", "superpoint_box_min", "superpoint_box_max"])
    # The whole scene is one floor: every quadrant lies on a plane with nothing beyond it.
    assert art["superpoint_structure"].tolist() == [True] * 4 and art.attrs["n_structure"] == 4
    assert art["superpoint_box_min"][0] == pytest.approx([-0.8, -0.8, 0.0], abs=1e-6)
    assert art["superpoint_box_max"][3] == pytest.approx([0.8, 0.8, 0.0], abs=1e-6)
    off = read_artifact(run_features_3d(scene_h5, root / "superpoints.h5", root / "f4.h5",
                                        {"structure": {"enabled": False}}), "features_3d")
    assert not off["superpoint_structure"].any()


def test_dino_backend_runs_through_the_stage(floor):
    from pipeline.unscene3d.features.dino import build_dino_vit

    root, scene_h5, _ = floor
    torch.manual_seed(0)
    tiny = {"embed_dim": 16, "depth": 2, "num_heads": 2, "img_size": 32}
    torch.save(build_dino_vit("vit_small_patch8_224", tiny).state_dict(), root / "dino.pth")
    params = {"backend": "dino", "frame_step": 1, "device": "cpu",
              "dino": {"checkpoint": str(root / "dino.pth"), "arch_overrides": tiny, "layer": 1, "short_side": 32}}
    art = read_artifact(run_features_2d(scene_h5, root / "superpoints.h5", root / "f.h5", params), "features_2d")
    assert art["superpoint_features"].shape == (4, 16) and art.attrs["backend"] == "dino"
    assert json.loads(art.attrs["params"])["dino"]["layer"] == 1


def test_dino_backend_without_checkpoint_is_a_clear_error(floor):
    root, scene_h5, _ = floor
    with pytest.raises(InputError, match="DINO checkpoint file is missing"):
        run_features_2d(scene_h5, root / "superpoints.h5", root / "f.h5", {"backend": "dino", "dino": {"checkpoint": str(root / "x.pth")}})


def test_csc_backend_runs_through_the_stage(floor):
    from pipeline.unscene3d.features.csc import Res16UNet, Res16UNetArch, save_csc_checkpoint

    root, scene_h5, _ = floor
    torch.manual_seed(0)
    arch = Res16UNetArch.small()
    save_csc_checkpoint(root / "csc.pth", Res16UNet(arch), arch)
    params = {"backend": "csc", "device": "cpu", "csc": {"checkpoint": str(root / "csc.pth")}}
    art = read_artifact(run_features_3d(scene_h5, root / "superpoints.h5", root / "f3.h5", params), "features_3d")
    assert art["superpoint_features"].shape == (4, arch.out_channels)


def test_config_typos_are_reported(floor):
    root, scene_h5, _ = floor
    with pytest.raises(InputError, match="unknown features_2d parameter 'frame_stpe'"):
        run_features_2d(scene_h5, root / "superpoints.h5", root / "f.h5", {"frame_stpe": 2})
    with pytest.raises(InputError, match=r"unknown features_3d.handcrafted parameter 'bandwith' \(did you mean 'bandwidth'\?\)"):
        run_features_3d(scene_h5, root / "superpoints.h5", root / "f.h5", {"handcrafted": {"bandwith": 1.0}})
