# Adapter: snakemake rule `keyframe_masks` -> pipeline.commands.keyframe_masks.run_keyframe_masks
from pipeline.commands.keyframe_masks import run_keyframe_masks
from pipeline.rulelog import rule_logging

with rule_logging(snakemake.log[0], "keyframe_masks", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_keyframe_masks(snakemake.input.scene, snakemake.output[0], dict(snakemake.params.cfg),
                       scene_dir=snakemake.params.scene_dir)
