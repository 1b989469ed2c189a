# Helpers shared by all rule files (scene table, config slices); wildcard constraints are in the Snakefile.
import os
from functools import cache
from pathlib import Path

from pipeline.io.resume import without_run_settings

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


def scene_geometry(scene):
    """The file that stands for a scene in the DAG: its mesh, its points.ply, or the fused mesh."""
    if is_synthetic(scene):
        return f"{RESULTS}/synthetic/{scene}/{scene}_vh_clean_2.ply"
    fused = fused_mesh_if_needed(scene)
    if fused:
        return fused
    folder = Path(scene_dir(scene))
    mesh = folder / f"{folder.name}_vh_clean_2.ply"
    # Neither existing is reported by ingest itself, with the reason (empty scene, missing folder).
    return str(mesh if mesh.is_file() or not (folder / "points.ply").is_file() else folder / "points.ply")


def first_pose_file(scene):
    poses = sorted(Path(scene_dir(scene), "pose").glob("*.txt"))
    return str(poses[0]) if poses else str(Path(scene_dir(scene), "pose"))


def stage_config(stage):
    """The config section a stage receives via params (editing it reruns that stage and its descendants).

    Run settings (RUN_SETTINGS: checkpoint_every, log_every, train's scene_cache and prefetch) are left
    out, so editing them reruns nothing; the scripts take them from the config with
    pipeline.io.resume.with_run_settings.
    """
    return without_run_settings(config.get(stage, {}))


def synth_spec(scene):
    return {**config["synth"], **SCENES[scene]["synthetic"]}


# Stages whose artifact holds per-point instances (point_instance), in DAG order: evaluated and drawn.
LABEL_STAGES = ["ncut", "lifted", "pseudo_labels"]
# The labels that are exported for trainers: the last stage of LABEL_STAGES.
FINAL_LABELS = LABEL_STAGES[-1]
# Rules that run once per scene (each writes results/<scene>/benchmarks/<rule>.tsv).
PER_SCENE_RULES = ["ingest", "ncut", "keyframe_masks", "track", "lift", "predict", "pictures", "export"]
# Cached rules may not have benchmark files; the summary reads their time and memory from the log.
CACHED_RULES = ["superpoints", "features_2d", "features_3d"]


def has_frames(scene):
    return is_synthetic(scene) or (Path(scene_dir(scene)) / "color").is_dir()


def has_ground_truth(scene):
    folder = Path(scene_dir(scene))
    return is_synthetic(scene) or any(
        (folder / f"{folder.name}{suffix}").is_file() for suffix in (".aggregation.json", ".txt")
    )


def picture_inputs(wildcards):
    inputs = {
        "scene": f"{RESULTS}/{wildcards.scene}/scene.h5",
        "superpoints": f"{RESULTS}/{wildcards.scene}/superpoints.h5",
        "labels": [f"{RESULTS}/{wildcards.scene}/{stage}.h5" for stage in LABEL_STAGES],
    }
    if has_frames(wildcards.scene):
        inputs["tracks"] = f"{RESULTS}/{wildcards.scene}/tracks.h5"
    return inputs


def metrics_files():
    return [
        f"{RESULTS}/{scene}/metrics/{stage}.json"
        for scene in sorted(SCENES)
        if has_ground_truth(scene)
        for stage in LABEL_STAGES
    ]


def benchmark_files():
    files = []
    for scene in sorted(SCENES):
        rules_run = list(PER_SCENE_RULES)
        if is_synthetic(scene):
            rules_run.append("synth_scene")
        if fused_mesh_if_needed(scene):
            rules_run.append("fuse_mesh")
        if has_ground_truth(scene):
            rules_run += [f"evaluate_{stage}" for stage in LABEL_STAGES]
        if learning_mode() == "box":
            rules_run.append("box_partition")
        files += [f"{RESULTS}/{scene}/benchmarks/{rule}.tsv" for rule in rules_run]
        files += [f"{RESULTS}/{scene}/logs/{rule}.log" for rule in CACHED_RULES]
    return files + [f"{RESULTS}/_training/benchmarks/train.tsv"]


def all_outputs():
    scenes = sorted(SCENES)
    return (
        [f"{RESULTS}/summary.md"]
        + expand(f"{RESULTS}/{{scene}}/pictures/overview.png", scene=scenes)
        + expand(f"{RESULTS}/{{scene}}/export/{{scene}}_instances.ply", scene=scenes)
    )


# Learning stage helpers (rules in learning.smk).
TRAINING_DIR = f"{RESULTS}/_training"  # "_" keeps it apart from scene names (they start alphanumeric)


def scene_has_boxes(scene):
    """Boxes come from boxes.json (synthetic scenes write one, standing in for annotator boxes), or
    from ground truth only when ingest.boxes_from_ground_truth asks for oracle boxes."""
    if is_synthetic(scene):
        return True
    if config.get("ingest", {}).get("boxes_from_ground_truth"):
        return has_ground_truth(scene)
    return (Path(scene_dir(scene)) / "boxes.json").is_file()


@cache  # asked once per job by input functions: without the cache, planning grows with scenes squared
def learning_mode():
    """train.mode, with auto resolved: box when every scene has boxes, else unsupervised."""
    from pipeline.learning.train.modes import resolve_mode

    return resolve_mode(stage_config("train").get("mode", "auto"), [s for s in SCENES if not scene_has_boxes(s)])


def unsupervised_sources():
    """Artifacts the unsupervised phases read: ncut.h5 and/or lifted.h5 (as named by the phases)."""
    phases = stage_config("train").get("unsupervised", {}).get("phases")
    if not phases or any("stage" in phase for phase in phases):
        return ["ncut", "lifted"]  # the presets' curriculum stages use both
    named = {name for phase in phases for target in phase.get("targets", []) for name in target.split("|")}
    views = {"lifted_views", "raw_views"}  # per-view masks are stored in lifted.h5
    return [name for name in ("ncut", "lifted") if name in named or (name == "lifted" and named & views)]


def train_devices():
    """train.devices: data-parallel ranks (GPUs) of the train job (workflow/scripts/train.py)."""
    return int(stage_config("train").get("devices", 1))


def train_inputs(wildcards):
    scenes = sorted(SCENES)
    inputs = {
        "scene": expand(f"{RESULTS}/{{scene}}/scene.h5", scene=scenes),
        "superpoints": expand(f"{RESULTS}/{{scene}}/superpoints.h5", scene=scenes),
    }
    if learning_mode() == "box":
        inputs["boxes"] = expand(f"{RESULTS}/{{scene}}/boxes.h5", scene=scenes)
    else:
        for source in unsupervised_sources():
            inputs[source] = expand(f"{RESULTS}/{{scene}}/{source}.h5", scene=scenes)
    return inputs


def predict_inputs(wildcards):
    inputs = {
        "model": f"{TRAINING_DIR}/model.pt",
        "scene": f"{RESULTS}/{wildcards.scene}/scene.h5",
        "superpoints": f"{RESULTS}/{wildcards.scene}/superpoints.h5",
    }
    if learning_mode() == "box":
        inputs["boxes"] = f"{RESULTS}/{wildcards.scene}/boxes.h5"
    else:  # the masks the model trained from stay in the labels (predict.keep_inputs)
        for source in unsupervised_sources():
            inputs[source] = f"{RESULTS}/{wildcards.scene}/{source}.h5"
    return inputs
