"""The cluster jobs a profile makes of the DAG, with the resources each will ask for (a dry run).

    .venv/bin/python benchmarks/group_jobs.py --profile profiles/slurm --configfile my_scenes.yaml

runs `snakemake -n` with the given arguments and prints one JSON line per job the executor would
submit (``SUBMIT {...}``): a group job (``group``, its ``rules`` by toposort level) or a single
rule, and its ``resources``. Rules that run in the main process (`all`) are left out.

Snakemake's dry run computes a group's resources as if the group ran in the local process (summed
over the whole group); a submitted group asks for less: the sum over rules that can run at the
same time, the maximum over rules that run one after another (runtime the other way round), capped
per group by the profile's local-scope `resources:` (GroupResources.basic_layered with
run_local=False, as the SLURM executor gets them). This script prints the submitted form.
``tests/test_slurm.py`` compares it with the real sbatch calls.
"""

from __future__ import annotations

import json
import sys

SHOWN = ("gpu", "cpus_per_task", "mem_mb", "runtime")
PREFIX = "SUBMIT "


def submitted_resources(group) -> dict:
    """A group job's resources as the executor of a cluster run gets them."""
    from snakemake.resources import GroupResources, Resources

    # A cluster run has no --cores limit (a dry run sets 1); the profile's `resources:` still cap
    # each group job.
    constraints = Resources.from_mapping({name: res.value for name, res in group.global_resources.items()
                                          if name not in ("_cores", "_nodes")})
    resources = GroupResources.basic_layered(toposorted_jobs=group.toposorted, constraints=constraints,
                                             run_local=False, additive_resources=["runtime"], sortby=["runtime"])
    return {name: resources[name] for name in SHOWN if name in resources}


def install() -> None:
    """Make the dry run print every submitted job as one JSON line."""
    import snakemake.jobs as jobs

    group_log_info, job_log_info = jobs.GroupJob.log_info, jobs.Job.log_info

    def log_group(self):
        group_log_info(self)
        levels = [sorted(job.rule.name for job in level) for level in self.toposorted]
        print(PREFIX + json.dumps({"group": self.groupid, "rules": levels, "resources": submitted_resources(self)}),
              flush=True)

    def log_job(self, indent=False, printshellcmd=True):
        job_log_info(self, indent=indent, printshellcmd=printshellcmd)
        rule = self.rule  # a dry run counts every job as local; a cluster run keeps these in the main process:
        local = rule.name in self.dag.workflow._localrules or rule.norun or rule.is_template_engine
        if not indent and not local:  # indented: a member of a group job, printed with it
            resources = {name: self.resources[name] for name in SHOWN if name in self.resources.keys()}
            print(PREFIX + json.dumps({"rule": self.rule.name, "wildcards": dict(self.wildcards_dict),
                                       "resources": resources}, default=str), flush=True)

    jobs.GroupJob.log_info = log_group
    jobs.Job.log_info = log_job


def parse(output: str) -> list[dict]:
    """The submitted jobs printed by a run of this script."""
    return [json.loads(line[len(PREFIX):]) for line in output.splitlines() if line.startswith(PREFIX)]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-n" not in argv and "--dry-run" not in argv and "--dryrun" not in argv:
        argv = ["-n", *argv]
    install()
    from snakemake.cli import main as snakemake_main

    sys.argv = ["snakemake", *argv]
    return snakemake_main()


if __name__ == "__main__":
    raise SystemExit(main())
