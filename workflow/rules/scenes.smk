# Scene sources: generated demo scenes, and ingest of every scene into scene.h5.


rule synth_scene:
    output:
        directory(f"{RESULTS}/synthetic/{{scene}}"),
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
        scene=lambda wc: scene_dir(wc.scene),
        mesh=lambda wc: fused_mesh_if_needed(wc.scene),
    output:
        f"{RESULTS}/{{scene}}/scene.h5",
    params:
        cfg=stage_config("ingest"),
    log:
        f"{RESULTS}/{{scene}}/logs/ingest.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/ingest.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/ingest.py"
