# Adapter: snakemake rule `train` -> pipeline.commands.train.run_train (all scenes, one model).
# train.devices > 1: the same run as `torchrun --standalone --nproc_per_node=N -m pipeline train`,
# its ranks' output forwarded to the rule's log.
import json
import logging
import subprocess

from pipeline.commands.train import run_train, write_inputs_file
from pipeline.io.resume import with_run_settings
from pipeline.io.rulelog import rule_logging
from pipeline.learning.train.data import SceneInputs
from pipeline.learning.train.distributed import torchrun_command


def scene_inputs(index, name):
    def optional(key):
        return snakemake.input[key][index] if key in snakemake.input.keys() else None

    return SceneInputs(name, snakemake.input.scene[index], snakemake.input.superpoints[index], optional("boxes"),
                       optional("ncut"), optional("lifted"))


settings = with_run_settings(snakemake.params.cfg, snakemake.config.get("train", {}))
params = {**settings, "mode": snakemake.params.mode}  # the DAG's resolved mode
devices = int(params.get("devices", 1))
with rule_logging(snakemake.log[0], "train", params, snakemake.input, snakemake.output) as log:
    inputs = [scene_inputs(i, name) for i, name in enumerate(snakemake.params.scenes)]
    if devices == 1:
        run_train(inputs, snakemake.output[0], params)
    else:
        # Exactly the rule's inputs (not every artifact found in the scene folders).
        listing = write_inputs_file(inputs, f"{snakemake.output[0]}.inputs.json")
        command = torchrun_command(devices, ["train", "--inputs", str(listing), "--out", snakemake.output[0],
                                             "--params", json.dumps(params)])
        log.info("starting %d ranks: %s", devices, " ".join(command))
        # The ranks' output goes through this process's logging: the log file's handler owns its offset.
        ranks = logging.getLogger("torchrun")
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
            for line in process.stdout:
                ranks.info("%s", line.rstrip())
        code = process.returncode
        listing.unlink(missing_ok=True)
        if code != 0:
            raise RuntimeError(f"torchrun with {devices} ranks failed (exit {code}); see {snakemake.log[0]}")
