# Adapter: snakemake rule `summary` -> pipeline.commands.summary.run_summary
from pipeline.commands.summary import run_summary
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "summary", {}, snakemake.input, snakemake.output) as log:
    metrics, timings = run_summary(snakemake.input.metrics, snakemake.input.benchmarks, snakemake.output.tsv, snakemake.output.markdown)
    log.info("%d metric rows, %d timing rows", len(metrics), len(timings))
