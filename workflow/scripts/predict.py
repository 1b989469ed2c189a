# Adapter: snakemake rule `predict` -> pipeline.commands.predict.run_predict
from pipeline.commands.predict import run_predict
from pipeline.io.rulelog import rule_logging
from pipeline.learning.train.data import SceneInputs

with rule_logging(snakemake.log[0], "predict", snakemake.params.cfg, snakemake.input, snakemake.output):
    inputs = SceneInputs(snakemake.wildcards.scene, snakemake.input.scene, snakemake.input.superpoints,
                         snakemake.input.get("boxes"), snakemake.input.get("ncut"), snakemake.input.get("lifted"))
    run_predict(snakemake.input.model, inputs, snakemake.output[0], dict(snakemake.params.cfg))
