"""A throw-away single-node SLURM cluster for tests: munge, slurmctld and slurmd from Debian's slurm-wlm.

Everything (config, keys, spool, logs, sockets) lives in one temporary folder, daemons listen on
loopback ports, and they are stopped by process id at the end. Needs root (slurmd manages jobs).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_requirements() -> list[str]:
    missing = [name for name in (*DAEMONS, "sbatch", "squeue", "sinfo") if shutil.which(name) is None]
    if os.geteuid() != 0:
        missing.append("root privileges")
    return missing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SlurmCluster:
    root: Path
    env: dict = field(default_factory=dict)
    pids: dict = field(default_factory=dict)

    def run(self, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout, check=check)

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)


def _write_config(root: Path, hostname: str, cpus: int, memory_mb: int) -> Path:
    for sub in ("state", "spool", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=pipelinetest",
                f"SlurmctldHost={hostname}(127.0.0.1)",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                "AuthType=auth/munge",
                f"AuthInfo=socket={root / 'run' / 'munge.sock'}",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool'}",
                f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'slurmctld.log'}",
                f"SlurmdLogFile={root / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "MpiDefault=none",
                "SchedulerType=sched/backfill",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "ReturnToService=2",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "SlurmctldTimeout=30",
                "SlurmdTimeout=30",
                "InactiveLimit=0",
                "KillWait=5",
                "MinJobAge=300",
                f"NodeName={hostname} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
                "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    return conf


def start_cluster(root: Path, cpus: int | None = None, memory_mb: int = 16000, timeout: float = 60) -> SlurmCluster:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    hostname = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 1
    conf = _write_config(root, hostname, cpus, memory_mb)
    # Snakemake's job-step executor strips SLURM_* variables before its nested `srun`, so on this
    # throw-away cluster (config outside /etc/slurm) srun would find no config: wrap it.
    wrappers = root / "bin"
    wrappers.mkdir(exist_ok=True)
    srun = wrappers / "srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec {shutil.which("srun")} "$@"\n')
    srun.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{wrappers}:{os.environ.get('PATH', '')}"}
    cluster = SlurmCluster(root, env)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    run = root / "run"
    run.chmod(0o755)
    subprocess.run(
        [
            "munged", "--force", f"--socket={run / 'munge.sock'}", f"--key-file={key}",
            f"--pid-file={run / 'munged.pid'}", f"--log-file={root / 'munged.log'}", f"--seed-file={root / 'munge.seed'}",
        ],
        check=True, env=env, capture_output=True,
    )
    cluster.pids["munged"] = int((run / "munged.pid").read_text())
    for daemon in ("slurmctld", "slurmd"):
        subprocess.run([daemon, "-f", str(conf)], check=True, env=env, capture_output=True, timeout=30)
    deadline = time.monotonic() + timeout
    for daemon in ("slurmctld", "slurmd"):
        pid_file = run / f"{daemon}.pid"
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_file.exists():
            cluster.pids[daemon] = int(pid_file.read_text())
    while time.monotonic() < deadline:
        state = cluster.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return cluster
        time.sleep(0.5)
    stop_cluster(cluster)
    raise RuntimeError(f"SLURM node did not become idle (state {state!r})\n{cluster.log_tail()}")


def stop_cluster(cluster: SlurmCluster) -> None:
    for daemon in ("slurmd", "slurmctld", "munged"):
        pid = cluster.pids.get(daemon)
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (daemons are reaped by whoever adopted them)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
