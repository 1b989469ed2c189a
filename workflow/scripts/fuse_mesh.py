# Adapter: snakemake rule `fuse_mesh` -> pipeline.commands.fuse_mesh.run_fuse_mesh
from pipeline.commands.fuse_mesh import run_fuse_mesh
from pipeline.io.rulelog import rule_logging

with rule_logging(snakemake.log[0], "fuse_mesh", snakemake.params.cfg, snakemake.input, snakemake.output) as log:
    stats = run_fuse_mesh(snakemake.params.scene_dir, snakemake.output[0], dict(snakemake.params.cfg))
    log.info("fusion: %s", stats)
