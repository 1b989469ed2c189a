# Results people look at: metrics per stage, pictures per scene, a summary table for the report.


rule evaluate:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
        labels=f"{RESULTS}/{{scene}}/{{stage}}.h5",
    output:
        f"{RESULTS}/{{scene}}/metrics/{{stage}}.json",
    params:
        cfg=stage_config("evaluate"),
    log:
        f"{RESULTS}/{{scene}}/logs/evaluate_{{stage}}.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/evaluate_{{stage}}.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/evaluate.py"


rule pictures:
    input:
        unpack(picture_inputs),
    output:
        overview=report(
            f"{RESULTS}/{{scene}}/pictures/overview.png",
            caption="../report/overview.rst",
            category="Scenes",
            subcategory="{scene}",
            labels={"scene": "{scene}", "picture": "top views"},
        ),
        views=report(
            f"{RESULTS}/{{scene}}/pictures/views.png",
            caption="../report/views.rst",
            category="Scenes",
            subcategory="{scene}",
            labels={"scene": "{scene}", "picture": "camera views"},
        ),
        tracking=report(
            f"{RESULTS}/{{scene}}/pictures/tracking.png",
            caption="../report/tracking.rst",
            category="Scenes",
            subcategory="{scene}",
            labels={"scene": "{scene}", "picture": "tracking"},
        ),
    params:
        cfg=stage_config("pictures"),
        labelled=lambda wc: {stage: f"{RESULTS}/{wc.scene}/{stage}.h5" for stage in LABEL_STAGES},
    log:
        f"{RESULTS}/{{scene}}/logs/pictures.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/pictures.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/pictures.py"


rule summary:
    input:
        metrics=lambda wc: metrics_files(),
        benchmarks=lambda wc: benchmark_files(),
    output:
        tsv=f"{RESULTS}/summary.tsv",
        markdown=report(
            f"{RESULTS}/summary.md",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "metrics and run time"},
        ),
    log:
        f"{RESULTS}/logs/summary.log",
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/summary.py"


rule export:
    input:
        scene=f"{RESULTS}/{{scene}}/scene.h5",
        superpoints=f"{RESULTS}/{{scene}}/superpoints.h5",
        labels=lambda wc: f"{RESULTS}/{wc.scene}/{FINAL_LABELS}.h5",
    output:
        # each consumer folder is a one-scene dataset in its trainer's layout (README "Exports")
        scannet=f"{RESULTS}/{{scene}}/export/scannet/{{scene}}.txt",
        spformer=f"{RESULTS}/{{scene}}/export/spformer/train/{{scene}}_inst_nostuff.pth",
        mask3d=f"{RESULTS}/{{scene}}/export/mask3d/train/{{scene}}.npy",
        mmdet3d=f"{RESULTS}/{{scene}}/export/mmdet3d/scannet_oneformer3d_infos_train.pkl",
        instances=f"{RESULTS}/{{scene}}/export/instances.tsv",
        ply=f"{RESULTS}/{{scene}}/export/{{scene}}_instances.ply",
    params:
        cfg=stage_config("export"),
    log:
        f"{RESULTS}/{{scene}}/logs/export.log",
    benchmark:
        f"{RESULTS}/{{scene}}/benchmarks/export.tsv"
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/export.py"
