# Adapter: snakemake rule `features_3d` -> pipeline.commands.features_3d.run_features_3d
from pipeline.commands.features_3d import run_features_3d
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "features_3d", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_features_3d(snakemake.input.scene, snakemake.input.superpoints, snakemake.output[0], dict(snakemake.params.cfg))
