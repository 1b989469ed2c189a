# Learning stage: box partition (box mode), one model trained on all scenes, per-scene pseudo-labels.
# train.mode picks the supervision: box (BEEP3D, needs boxes), unsupervised (UnScene3D + curriculum
# on ncut.h5 / lifted.h5), or auto: box when every scene has boxes, else unsupervised.

TRAINING_DIR = f"{RESULTS}/_training"  # "_" keeps it apart from scene names (they start alphanumeric)


def scene_has_boxes(scene):
    """Boxes come from boxes.json or, failing that, from ScanNet ground truth (synthetic scenes have both)."""
    if is_synthetic(scene):
        return True
    folder = Path(scene_dir(scene))
    return (folder / "boxes.json").is_file() or (folder / f"{folder.name}.aggregation.json").is_file()


def learning_mode():
    requested = stage_config("train").get("mode", "auto")
    if requested != "auto":
        return requested
    return "box" if all(scene_has_boxes(s) for s in SCENES) else "unsupervised"


def unsupervised_sources():
    """Artifacts the unsupervised phases read: ncut.h5 and/or lifted.h5 (as named by the phases)."""
    phases = stage_config("train").get("unsupervised", {}).get("phases")
    if not phases:
        return ["ncut", "lifted"]  # the presets' phases use both
    named = {name for phase in phases for target in phase.get("targets", []) for name in target.split("|")}
    return [name for name in ("ncut", "lifted") if name in named or (name == "lifted" and "lifted_views" in named)]


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
    return inputs


rule box_partition:
    input:
        f"{RESULTS}/{{scene}}/scene.h5",
    output:
        f"{RESULTS}/{{scene}}/boxes.h5",
    params:
        cfg=stage_config("box_partition"),
    log:
        f"{RESULTS}/{{scene}}/logs/box_partition.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/box_partition.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/box_partition.py"


# Gathers every scene. Resumable: a killed run continues from model.pt.last (same params and inputs).
rule train:
    input:
        unpack(train_inputs),
    output:
        f"{TRAINING_DIR}/model.pt",
    params:
        cfg=stage_config("train"),
        mode=learning_mode(),
        scenes=sorted(SCENES),
    threads: 1  # spconv's CPU kernels are only correct single-threaded; on a GPU one thread is plenty
    resources:
        gpu=1,
    log:
        f"{TRAINING_DIR}/logs/train.log",
    benchmark:
        f"{TRAINING_DIR}/benchmarks/train.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule predict:
    input:
        unpack(predict_inputs),
    output:
        f"{RESULTS}/{{scene}}/pseudo_labels.h5",
    params:
        cfg=stage_config("predict"),
    threads: 1
    resources:
        gpu=1,
    log:
        f"{RESULTS}/{{scene}}/logs/predict.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/predict.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/predict.py"
