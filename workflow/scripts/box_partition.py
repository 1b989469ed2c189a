# Adapter: snakemake rule `box_partition` -> pipeline.commands.box_partition.run_box_partition
from pipeline.commands.box_partition import run_box_partition
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "box_partition", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_box_partition(snakemake.input[0], snakemake.output[0], dict(snakemake.params.cfg))
