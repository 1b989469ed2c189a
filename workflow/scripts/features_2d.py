# Adapter: snakemake rule `features_2d` -> pipeline.commands.features_2d.run_features_2d
from pipeline.commands.features_2d import run_features_2d
from pipeline.rulelog import rule_logging

with rule_logging(snakemake.log[0], "features_2d", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_features_2d(snakemake.input.scene, snakemake.input.superpoints, snakemake.output[0], dict(snakemake.params.cfg))
