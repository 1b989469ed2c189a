# Adapter: snakemake rule `evaluate` -> pipeline.commands.evaluate.run_evaluate
from pipeline.commands.evaluate import run_evaluate
from pipeline.io.rulelog import rule_logging

cfg = dict(snakemake.params.cfg)
with rule_logging(snakemake.log[0], "evaluate", cfg, snakemake.input, snakemake.output) as log:
    metrics = run_evaluate(snakemake.input.scene, snakemake.input.labels, snakemake.output[0], params=cfg)
    log.info("metrics: %s", {k: metrics.get(k) for k in ("gt_classes", "ap", "ap50", "ap25", "n_gt", "n_pred")})
