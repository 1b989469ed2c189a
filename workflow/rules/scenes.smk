# Scene sources: generated demo scenes, and ingest of every scene into scene.h5.


rule synth_scene:
    output:
        # The whole scene folder is written; its mesh stands for it in the DAG (a folder cannot
        # be content-hashed for between-workflow caching).
        mesh=f"{RESULTS}/synthetic/{{scene}}/{{scene}}_vh_clean_2.ply",
    params:
        spec=lambda wc: synth_spec(wc.scene),
    log:
        f"{RESULTS}/{{scene}}/logs/synth_scene.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/synth_scene.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/synth_scene.py"


rule ingest:
    input:
        # Frames are read from the scene folder; the geometry file stands for the scene in the DAG
        # (after changing frames in place, force the stage: -R ingest).
        geometry=lambda wc: scene_geometry(wc.scene),
    output:
        f"{RESULTS}/{{scene}}/scene.h5",
    params:
        scene_dir=lambda wc: scene_dir(wc.scene),
        fused=lambda wc: bool(fused_mesh_if_needed(wc.scene)),
        cfg=stage_config("ingest"),
    log:
        f"{RESULTS}/{{scene}}/logs/ingest.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/ingest.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/ingest.py"
