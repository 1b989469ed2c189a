# Helpers shared by all rule files (scene table, config slices); wildcard constraints are in the Snakefile.
import os
from pathlib import Path

RESULTS = config["results_dir"]


def scene_table():
    """Scenes to process: the user's `scenes:` mapping, or the built-in demo scenes."""
    return config.get("scenes") or config["demo_scenes"]


SCENES = scene_table()


def is_synthetic(scene):
    return isinstance(SCENES[scene], dict) and "synthetic" in SCENES[scene]


def scene_dir(scene):
    """Folder holding the scene in ScanNet layout (generated for synthetic scenes)."""
    if is_synthetic(scene):
        return f"{RESULTS}/synthetic/{scene}"
    path = SCENES[scene] if isinstance(SCENES[scene], str) else SCENES[scene]["path"]
    return os.path.expanduser(str(path))


def fused_mesh_if_needed(scene):
    """A real scene with frames but neither a mesh nor points.ply gets a TSDF-fused mesh."""
    if is_synthetic(scene):
        return []
    folder = Path(scene_dir(scene))
    has_geometry = (folder / f"{folder.name}_vh_clean_2.ply").is_file() or (folder / "points.ply").is_file()
    if has_geometry or not (folder / "depth").is_dir():
        return []
    return f"{RESULTS}/{scene}/fused_mesh.ply"


def stage_config(stage):
    """The config section a stage receives via params (editing it reruns that stage and its descendants)."""
    return config.get(stage, {})


def synth_spec(scene):
    return {**config["synth"], **SCENES[scene]["synthetic"]}


def all_outputs():
    targets = ["superpoints.h5", "lifted.h5"]
    return expand(f"{RESULTS}/{{scene}}/{{target}}", scene=sorted(SCENES), target=targets)
