# Learning stage: box partition (box mode), one model trained on all scenes, per-scene pseudo-labels.
# train.mode picks the supervision: box (BEEP3D, needs boxes), unsupervised (UnScene3D + curriculum
# on ncut.h5 / lifted.h5), or auto: box when every scene has boxes, else unsupervised.

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
    # spconv's CPU kernels are only correct single-threaded: one thread per process (rank); on a
    # GPU one thread per rank is plenty.
    threads: train_devices()
    resources:
        gpu=train_devices(),  # train.devices > 1: the script starts that many ranks with torchrun
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
