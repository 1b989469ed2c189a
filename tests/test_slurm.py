"""The DAG submitted through the SLURM profile to a real single-node cluster on this machine."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from artifact_compare import assert_same_artifacts
from cluster.slurm import missing_requirements, start_cluster, stop_cluster

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import group_jobs  # noqa: E402

NOGPU = REPO / "profiles" / "slurm-nogpu"
TINY = REPO / "tests" / "tiny_config.yaml"


def two_scenes_config() -> str:
    """The tiny config with a second scene (another seed): one job per group and scene, and the gather."""
    config = yaml.safe_load(TINY.read_text())
    assert list(config["scenes"]) == ["tiny_room"]
    spec = config["scenes"]["tiny_room"]["synthetic"]
    config["scenes"]["tiny_room_b"] = {"synthetic": {**spec, "seed": spec["seed"] + 2}}
    return yaml.safe_dump(config)


TWO_SCENES = two_scenes_config()
GROUPS_PER_SCENE = ("prep", "masks", "labels")  # the groups of profiles/slurm*/config.yaml
GATHER_RULES = ("train", "summary")  # one job each for all scenes


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    missing = missing_requirements()
    if missing:
        pytest.skip(f"no local SLURM test cluster: missing {', '.join(missing)} (CI installs slurm-wlm and munge)")
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    yield cluster
    stop_cluster(cluster)


def snakemake(args, cwd, env=None, timeout=1800):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def planned_submissions(args, cwd):
    """The jobs the profile would submit, with their resources (benchmarks/group_jobs.py, a dry run)."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "group_jobs.py"), "--snakefile",
                           str(REPO / "Snakefile"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return group_jobs.parse(proc.stdout)


def job_name(job):
    """The name the SLURM plugin gives a job's log folder: group_<id>_<rules> or rule_<name>."""
    if "rule" in job:
        return f"rule_{job['rule']}"
    rules = sorted({rule for level in job["rules"] for rule in level})
    return f"group_{job['group']}_" + "_".join(rules[:5] + (["..."] if len(rules) > 5 else []))


def sbatch_calls(output):
    """(group_<id> or rule_<name>, {'-t': minutes, '--mem': MB, '--cpus-per-task': n, '--gpus': n}) per sbatch."""
    calls = []
    for line in output.splitlines():
        if "sbatch call:" not in line:
            continue
        log = re.search(r"slurm_logs/((?:group|rule)_[^/'\" ]+)", line)
        options = dict(re.findall(r"(-t|--mem|--cpus-per-task|--gpus)[ =]'?(\d+)", line))
        calls.append((log.group(1) if log else line, {k: int(v) for k, v in options.items()}))
    return calls


def submitted_job_ids(output):
    return set(re.findall(r"has been submitted with SLURM jobid (\d+)", output))


def test_profiles_group_jobs_per_scene_with_summed_resources(tmp_path):
    """Without a cluster: what profiles/slurm would submit for two scenes, and what each job asks for."""
    (tmp_path / "two.yaml").write_text(TWO_SCENES)
    jobs = planned_submissions(["--profile", str(REPO / "profiles" / "slurm"), "--configfile", "two.yaml"], tmp_path)
    names = sorted(job.get("group", job.get("rule")) for job in jobs)
    assert names == sorted([f"{g}_{s}" for g in GROUPS_PER_SCENE for s in ("tiny_room", "tiny_room_b")]
                           + list(GATHER_RULES))
    by_name = {f"group_{job['group']}" if "group" in job else job["rule"]: job for job in jobs}
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())

    def resource(rule, name):
        return profile["set-resources"].get(rule, {}).get(name, profile["default-resources"][name])

    masks = by_name["group_masks_tiny_room"]["resources"]
    assert by_name["group_masks_tiny_room"]["rules"] == [
        ["features_2d", "features_3d", "keyframe_masks"], ["ncut", "track"], ["lift"]]
    # The plugin runs a group's rules one after another (one srun step each): the group asks for
    # its largest member's GPUs, CPUs and memory, and for the sum of their runtimes.
    rules = ("features_2d", "features_3d", "keyframe_masks", "track", "ncut", "lift")
    assert masks["gpu"] == 1  # not 3 for the three GPU rules that could run at once
    assert masks["cpus_per_task"] == max(resource(rule, "cpus_per_task") for rule in rules)
    assert masks["mem_mb"] == max(resource(rule, "mem_mb") for rule in rules)
    assert masks["runtime"] == sum(resource(rule, "runtime") for rule in rules)
    assert by_name["group_labels_tiny_room"]["resources"]["gpu"] == 1
    prep = by_name["group_prep_tiny_room"]["resources"]
    assert "gpu" not in prep
    rules = ("synth_scene", "ingest", "superpoints", "box_partition")
    assert (prep["cpus_per_task"], prep["mem_mb"], prep["runtime"]) == (
        max(resource(rule, "cpus_per_task") for rule in rules), max(resource(rule, "mem_mb") for rule in rules),
        sum(resource(rule, "runtime") for rule in rules))


def test_dag_through_slurm_in_group_jobs_matches_local_run(slurm_cluster, tmp_path):
    local, cluster_dir = tmp_path / "local", tmp_path / "cluster"
    for folder in (local, cluster_dir):
        folder.mkdir()
        (folder / "two.yaml").write_text(TWO_SCENES)
    code, output = snakemake(["--cores", "2", "--configfile", "two.yaml"], local)
    assert code == 0, output
    profile = ["--profile", str(NOGPU), "--configfile", "two.yaml"]
    planned = planned_submissions(profile, cluster_dir)
    code, dry = snakemake([*profile, "-n", "--quiet", "rules"], cluster_dir)
    rule_jobs = int(re.search(r"^total\s+(\d+)", dry, re.M).group(1)) - 1  # less `all` (main process)
    # three jobs per scene and one per gather rule, instead of one per rule and scene
    assert len(planned) == 2 * len(GROUPS_PER_SCENE) + len(GATHER_RULES) < rule_jobs

    code, output = snakemake([*profile, "--verbose"], cluster_dir, env=slurm_cluster.env)
    job_logs = "\n".join(p.read_text()[-3000:] for p in (cluster_dir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert code == 0, output[-20000:] + "\n" + slurm_cluster.log_tail() + "\n--- job logs\n" + job_logs
    job_ids = submitted_job_ids(output)
    print(f"SLURM job ids: {sorted(job_ids, key=int)}; {rule_jobs} rule jobs in {len(planned)} submissions")
    assert len(job_ids) == len(planned), output[-20000:]
    log = (slurm_cluster.root / "slurmctld.log").read_text()
    for job_id in job_ids:
        assert f"JobId={job_id} done" in log or f"JobId={job_id} WEXITSTATUS 0" in log
    # each sbatch asked for what the group's members add up to
    calls = dict(sbatch_calls(output))
    assert sorted(calls) == sorted(job_name(job) for job in planned)
    for job in planned:
        asked, wanted = calls[job_name(job)], job["resources"]
        assert (asked["-t"], asked["--mem"], asked["--cpus-per-task"]) == (
            wanted["runtime"], wanted["mem_mb"], wanted["cpus_per_task"]), job_name(job)
        assert "--gpus" not in asked
    assert assert_same_artifacts(local / "results", cluster_dir / "results") >= 2

    # Reruns inside a group: a forced stage (`-R lift`) and a lost artifact (tracks.h5 of one scene, as
    # if its group job had died in `track`) resubmit the groups with those rules and what follows
    # them only; nothing else in the group is redone.
    results = cluster_dir / "results"
    untouched = [results / s / f for s in ("tiny_room", "tiny_room_b") for f in ("features_2d.h5", "masks2d.h5")]
    untouched.append(results / "tiny_room" / "tracks.h5")
    mtimes = {path: path.stat().st_mtime_ns for path in untouched}
    (results / "tiny_room_b" / "tracks.h5").unlink()
    planned = planned_submissions([*profile, "-R", "lift"], cluster_dir)
    assert sorted(str(job.get("group", job.get("rule"))) + str(job.get("rules", "")) for job in planned) == [
        "labels_tiny_room[['evaluate', 'pictures']]", "labels_tiny_room_b[['evaluate', 'pictures']]",
        "masks_tiny_room[['lift']]", "masks_tiny_room_b[['track'], ['lift']]", "summary"]
    code, output = snakemake([*profile, "-R", "lift"], cluster_dir, env=slurm_cluster.env)
    assert code == 0, output[-20000:]
    assert len(submitted_job_ids(output)) == len(planned), output[-20000:]
    assert {path: path.stat().st_mtime_ns for path in untouched} == mtimes
    assert assert_same_artifacts(local / "results", results) >= 2


def test_train_devices_ask_for_that_many_gpus_on_one_node(tmp_path):
    """Without a cluster: train.devices: 2 makes the train job ask for gpu=2 (sbatch --gpus=2), on one node."""
    (tmp_path / "two.yaml").write_text(TWO_SCENES)
    (tmp_path / "devices.yaml").write_text("train: {devices: 2}\n")
    jobs = planned_submissions(["--profile", str(REPO / "profiles" / "slurm"), "--configfile", "two.yaml",
                                "devices.yaml"], tmp_path)
    train = next(job for job in jobs if job.get("rule") == "train")
    assert train["resources"]["gpu"] == 2
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["set-resources"]["train"]["nodes"] == 1  # torchrun --standalone: one machine
