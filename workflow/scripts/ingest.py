# Adapter: snakemake rule `ingest` -> pipeline.commands.ingest.run_ingest
from pipeline.commands.ingest import run_ingest
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "ingest", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_ingest(
        snakemake.params.scene_dir,
        snakemake.output[0],
        dict(snakemake.params.cfg),
        mesh_path=snakemake.input.geometry if snakemake.params.fused else None,
    )
