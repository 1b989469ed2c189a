# Adapter: snakemake rule `synth_scene` -> pipeline.commands.synth.run_synth
from pathlib import Path

from pipeline.commands.synth import run_synth
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "synth_scene", snakemake.params.spec, [], snakemake.output):
    run_synth(Path(snakemake.output.mesh).parent, dict(snakemake.params.spec))
