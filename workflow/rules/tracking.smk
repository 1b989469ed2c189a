# Granularity-consistent 2D mask tracking: keyframe masks -> tracked label maps -> lifted 3D instances.
# Frames are read from the scene folder; scenes without frames (point clouds) get explicitly empty artifacts.


rule keyframe_masks:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
    output:
        f"{RESULTS}/{{scene}}/masks2d.h5",
    params:
        scene_dir=lambda wc: scene_dir(wc.scene),
        cfg=stage_config("keyframe_masks"),
    resources:
        gpu=1,
    log:
        f"{RESULTS}/{{scene}}/logs/keyframe_masks.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/keyframe_masks.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/keyframe_masks.py"


rule track:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
        masks2d=f"{RESULTS}/{{scene}}/masks2d.h5",
    output:
        f"{RESULTS}/{{scene}}/tracks.h5",
    params:
        scene_dir=lambda wc: scene_dir(wc.scene),
        cfg=stage_config("track"),
    resources:
        gpu=1,
    log:
        f"{RESULTS}/{{scene}}/logs/track.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/track.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/track.py"


rule lift:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
        superpoints=f"{RESULTS}/{{scene}}/superpoints.h5",
        tracks=f"{RESULTS}/{{scene}}/tracks.h5",
        masks2d=f"{RESULTS}/{{scene}}/masks2d.h5",  # raw single-view masks for the curriculum's first stage
    output:
        f"{RESULTS}/{{scene}}/lifted.h5",
    params:
        scene_dir=lambda wc: scene_dir(wc.scene),
        cfg=stage_config("lift"),
    log:
        f"{RESULTS}/{{scene}}/logs/lift.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/lift.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/lift.py"
