# Adapter: snakemake rule `features_2d` -> pipeline.commands.features_2d.run_features_2d
from pipeline.commands.features_2d import run_features_2d
from pipeline.io.resume import with_run_settings
from pipeline.io.rulelog import rule_logging

params = with_run_settings(snakemake.params.cfg, snakemake.config.get("features_2d", {}))
with rule_logging(snakemake.log[0], "features_2d", params, snakemake.input, snakemake.output):
    run_features_2d(snakemake.input.scene, snakemake.input.superpoints, snakemake.output[0], params)
