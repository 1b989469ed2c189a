# 3D instance pseudo-labels from indoor RGB-D scans. See README.md and ../shared/DESIGN.md.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: f"{workflow.basedir}/config.yaml"

validate(config, "workflow/schemas/config.schema.yaml")

report: "workflow/report/workflow.rst"

include: "workflow/rules/common.smk"

wildcard_constraints:
    scene=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
    stage=r"ncut|lifted|pseudo_labels",

include: "workflow/rules/scenes.smk"
include: "workflow/rules/superpoints.smk"
include: "workflow/rules/unscene3d.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/learning.smk"
include: "workflow/rules/report.smk"

rule all:
    input:
        all_outputs(),
    default_target: True
