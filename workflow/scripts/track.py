# Adapter: snakemake rule `track` -> pipeline.commands.track.run_track
# A killed job resumes from tracks.h5.resume/ beside the output (removed when the job succeeds).
from pipeline.commands.track import run_track
from pipeline.io.resume import with_run_settings
from pipeline.io.rulelog import rule_logging

params = with_run_settings(snakemake.params.cfg, snakemake.config.get("track", {}))
with rule_logging(snakemake.log[0], "track", params, snakemake.input, snakemake.output):
    run_track(snakemake.input.scene, snakemake.input.masks2d, snakemake.output[0], params,
              scene_dir=snakemake.params.scene_dir)
