# Geometry stages: TSDF mesh fusion (scenes with frames but no mesh) and superpoints.


rule fuse_mesh:
    input:
        scene=lambda wc: scene_dir(wc.scene),
    output:
        f"{RESULTS}/{{scene}}/fused_mesh.ply",
    params:
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
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/superpoints.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/superpoints.py"
