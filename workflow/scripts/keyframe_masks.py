# Adapter: snakemake rule `keyframe_masks` -> pipeline.commands.keyframe_masks.run_keyframe_masks
from pipeline.commands.keyframe_masks import run_keyframe_masks
from pipeline.io.resume import with_run_settings
from pipeline.io.rulelog import rule_logging

params = with_run_settings(snakemake.params.cfg, snakemake.config.get("keyframe_masks", {}))
with rule_logging(snakemake.log[0], "keyframe_masks", params, snakemake.input, snakemake.output):
    run_keyframe_masks(snakemake.input.scene, snakemake.output[0], params,
                       scene_dir=snakemake.params.scene_dir)
