# Geometry stages: TSDF mesh fusion (scenes with frames but no mesh) and superpoints.


rule fuse_mesh:
    input:
        # Any one pose file stands for the frames (a folder cannot be content-hashed).
        first_pose=lambda wc: first_pose_file(wc.scene),
    output:
        f"{RESULTS}/{{scene}}/fused_mesh.ply",
    params:
        scene_dir=lambda wc: scene_dir(wc.scene),
        cfg=stage_config("fuse_mesh"),
    log:
        f"{RESULTS}/{{scene}}/logs/fuse_mesh.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/fuse_mesh.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/fuse_mesh.py"


rule superpoints:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
    output:
        f"{RESULTS}/{{scene}}/superpoints.h5",
    params:
        cfg=stage_config("superpoints"),
    log:
        f"{RESULTS}/{{scene}}/logs/superpoints.log",
    # Deterministic and reusable across workflow folders (--cache with SNAKEMAKE_OUTPUT_CACHE set).
    # Snakemake forbids benchmark: on cached rules; run time and memory are in the log instead.
    cache: "omit-software"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/superpoints.py"
