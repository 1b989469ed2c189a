# Adapter: snakemake rule `superpoints` -> pipeline.commands.superpoints.run_superpoints
from pipeline.commands.superpoints import run_superpoints
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "superpoints", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_superpoints(snakemake.input.scene, snakemake.output[0], dict(snakemake.params.cfg))
