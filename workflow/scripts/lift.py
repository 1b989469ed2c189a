# Adapter: snakemake rule `lift` -> pipeline.commands.lift.run_lift
from pipeline.commands.lift import run_lift
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "lift", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_lift(snakemake.input.scene, snakemake.input.superpoints, snakemake.input.tracks, snakemake.output[0],
             dict(snakemake.params.cfg), scene_dir=snakemake.params.scene_dir,
             masks2d_h5=snakemake.input.masks2d)
