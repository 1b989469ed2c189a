"""The tiny DAG submitted through the SLURM profile to a real single-node cluster on this machine."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from artifact_compare import assert_same_artifacts
from cluster.slurm import missing_requirements, start_cluster, stop_cluster

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_config.yaml"


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    missing = missing_requirements()
    if missing:
        pytest.skip(f"no local SLURM test cluster: missing {', '.join(missing)} (CI installs slurm-wlm and munge)")
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    yield cluster
    stop_cluster(cluster)


def snakemake(args, cwd, env=None, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_tiny_dag_through_slurm_matches_local_run(slurm_cluster, tmp_path):
    local, cluster_dir = tmp_path / "local", tmp_path / "cluster"
    local.mkdir()
    cluster_dir.mkdir()
    code, output = snakemake(["--cores", "2", "--configfile", str(TINY)], local)
    assert code == 0, output
    code, output = snakemake(
        ["--profile", str(REPO / "profiles" / "slurm-nogpu"), "--configfile", str(TINY)],
        cluster_dir, env=slurm_cluster.env,
    )
    job_logs = "\n".join(p.read_text()[-3000:] for p in (cluster_dir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert code == 0, output + "\n" + slurm_cluster.log_tail() + "\n--- job logs\n" + job_logs
    job_ids = set(re.findall(r"SLURM jobid (\d+)", output)) | set(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", output))
    assert job_ids, f"no SLURM job ids in the log:\n{output}"
    print(f"SLURM job ids: {sorted(job_ids, key=int)}")
    log = (slurm_cluster.root / "slurmctld.log").read_text()
    for job_id in job_ids:
        assert f"JobId={job_id} done" in log or f"JobId={job_id} WEXITSTATUS 0" in log
    assert assert_same_artifacts(local / "results", cluster_dir / "results") >= 2
