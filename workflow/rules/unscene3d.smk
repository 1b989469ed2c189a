# UnScene3D pseudo masks: 2D and 3D superpoint features, then masked iterative Normalized Cut.
# Point clouds without frames take their colour features from the points' own colours (features_2d.point_colors).


rule features_2d:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
        superpoints=f"{RESULTS}/{{scene}}/superpoints.h5",
    output:
        f"{RESULTS}/{{scene}}/features_2d.h5",
    params:
        cfg=stage_config("features_2d"),
    resources:
        gpu=1,
    log:
        f"{RESULTS}/{{scene}}/logs/features_2d.log",
    # Deterministic: reusable across workflow folders with --cache (no benchmark: allowed then).
    cache: "omit-software"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/features_2d.py"


rule features_3d:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
        superpoints=f"{RESULTS}/{{scene}}/superpoints.h5",
    output:
        f"{RESULTS}/{{scene}}/features_3d.h5",
    params:
        cfg=stage_config("features_3d"),
    resources:
        gpu=1,
    log:
        f"{RESULTS}/{{scene}}/logs/features_3d.log",
    # Deterministic: reusable across workflow folders with --cache (no benchmark: allowed then).
    cache: "omit-software"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/features_3d.py"


rule ncut:
    input:
        superpoints=f"{RESULTS}/{{scene}}/superpoints.h5",
        features_2d=f"{RESULTS}/{{scene}}/features_2d.h5",
        features_3d=f"{RESULTS}/{{scene}}/features_3d.h5",
    output:
        f"{RESULTS}/{{scene}}/ncut.h5",
    params:
        cfg=stage_config("ncut"),
    log:
        f"{RESULTS}/{{scene}}/logs/ncut.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/ncut.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/ncut.py"
