# Adapter: snakemake rule `train` -> pipeline.commands.train.run_train (all scenes, one model)
from pipeline.commands.train import run_train
from pipeline.resume import with_run_settings
from pipeline.rulelog import rule_logging
from pipeline.train.data import SceneInputs


def scene_inputs(index, name):
    def optional(key):
        return snakemake.input[key][index] if key in snakemake.input.keys() else None

    return SceneInputs(name, snakemake.input.scene[index], snakemake.input.superpoints[index], optional("boxes"),
                       optional("ncut"), optional("lifted"))


settings = with_run_settings(snakemake.params.cfg, snakemake.config.get("train", {}))
params = {**settings, "mode": snakemake.params.mode}  # the DAG's resolved mode
with rule_logging(snakemake.log[0], "train", params, snakemake.input, snakemake.output):
    inputs = [scene_inputs(i, name) for i, name in enumerate(snakemake.params.scenes)]
    run_train(inputs, snakemake.output[0], params)
