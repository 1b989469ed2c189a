# Adapter: snakemake rule `ncut` -> pipeline.commands.ncut.run_ncut
from pipeline.commands.ncut import run_ncut
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "ncut", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_ncut(snakemake.input.superpoints, snakemake.input.features_2d, snakemake.input.features_3d, snakemake.output[0],
             dict(snakemake.params.cfg))
