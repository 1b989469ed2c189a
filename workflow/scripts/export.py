# Adapter: snakemake rule `export` -> pipeline.commands.export.run_export
from pathlib import Path

from pipeline.commands.export import run_export
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "export", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_export(
        snakemake.input.scene,
        snakemake.input.superpoints,
        snakemake.input.labels,
        Path(snakemake.output.ply).parent,
        scene=snakemake.wildcards.scene,
        params=snakemake.params.cfg,
    )
