# Adapter: snakemake rule `pictures` -> pipeline.commands.pictures.run_pictures
from pathlib import Path

from pipeline.commands.pictures import run_pictures
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "pictures", snakemake.params.cfg, snakemake.input, snakemake.output):
    run_pictures(
        snakemake.input.scene,
        Path(snakemake.output.overview).parent,
        superpoints_h5=snakemake.input.superpoints,
        labelled=dict(snakemake.params.labelled),
        tracks_h5=snakemake.input.get("tracks") or None,
        params=snakemake.params.cfg,
    )
