"""Operations on the tiny DAG: rerunning one stage, determinism, and a job killed mid-run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from artifact_compare import assert_same_artifacts

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_config.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]


def snakemake(args, cwd, timeout=900):
    proc = subprocess.run(SNAKEMAKE + ["--configfile", str(TINY), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    jobs, in_table = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            in_table = True
            continue
        parts = line.split()
        if in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
        elif in_table and parts and parts[0] == "total":
            break
    return jobs


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    snakemake([], workdir)
    return workdir


def test_same_config_gives_identical_artifacts(reference_run, tmp_path):
    snakemake([], tmp_path)
    assert assert_same_artifacts(reference_run / "results", tmp_path / "results") >= 2


def test_changing_one_stage_reruns_it_and_descendants_only(reference_run, tmp_path):
    workdir = tmp_path / "work"
    subprocess.run(["cp", "-a", str(reference_run), str(workdir)], check=True)
    scene_h5 = workdir / "results" / "tiny_room" / "scene.h5"
    before = scene_h5.stat().st_mtime_ns
    assert "Nothing to be done" in snakemake(["-n"], workdir)
    change = tmp_path / "change.yaml"
    change.write_text("superpoints:\n  k_thresh: 0.05\n")
    plan = planned_jobs(snakemake(["-n", "--configfile", str(TINY), str(change)], workdir))
    # Exactly superpoints and its descendants, as the DAG itself defines them (-R superpoints).
    assert plan == planned_jobs(snakemake(["-n", "--forcerun", "superpoints"], workdir))
    assert plan.get("superpoints") == 1
    for descendant in ("features_2d", "features_3d", "ncut", "lift", "train", "predict", "evaluate", "export"):
        assert plan.get(descendant, 0) >= 1, (descendant, plan)
    # Upstream and sibling stages (which do not read superpoints.h5) are not planned.
    for other in ("synth_scene", "ingest", "keyframe_masks", "track", "box_partition"):
        assert other not in plan, (other, plan)
    scene_dir = workdir / "results" / "tiny_room"
    untouched = {name: (scene_dir / name).stat().st_mtime_ns for name in ("scene.h5", "masks2d.h5", "tracks.h5")}
    rerun = {name: (scene_dir / name).stat().st_mtime_ns for name in ("superpoints.h5", "ncut.h5", "lifted.h5")}
    snakemake(["--configfile", str(TINY), str(change)], workdir)
    assert scene_h5.stat().st_mtime_ns == before  # upstream artifact untouched
    assert {name: (scene_dir / name).stat().st_mtime_ns for name in untouched} == untouched  # siblings too
    assert all((scene_dir / name).stat().st_mtime_ns != mtime for name, mtime in rerun.items())


def test_run_settings_change_nothing_in_the_plan(reference_run, tmp_path):
    """checkpoint_every / log_every say how a job runs, not what it computes: no rerun."""
    workdir = tmp_path / "work"
    subprocess.run(["cp", "-a", str(reference_run), str(workdir)], check=True)
    change = tmp_path / "change.yaml"
    change.write_text("track:\n  checkpoint_every: 3\nkeyframe_masks:\n  checkpoint_every: 1\n"
                      "features_2d:\n  checkpoint_every: 7\ntrain:\n  checkpoint_every: 5\n  log_every: 1\n")
    assert "Nothing to be done" in snakemake(["-n", "--configfile", str(TINY), str(change)], workdir)


# Loaded by every Python process of a test run through PYTHONPATH: when an HDF5 file whose name
# contains $HOLD_H5_WRITE is closed after writing, it records that in $HOLD_H5_MARKER and waits
# (to be killed), so a SIGKILL lands exactly after the artifact's data is written and before the
# writer could finish the file (with a write-then-rename writer: before the rename).
_HOLD_HOOK = """
import os
if os.environ.get("HOLD_H5_WRITE"):
    import time
    import h5py

    _close = h5py.File.close

    def close(self):
        if self.id.valid and self.mode == "r+" and os.environ["HOLD_H5_WRITE"] in os.path.basename(self.filename):
            self.flush()
            with open(os.environ["HOLD_H5_MARKER"] + ".part", "w") as marker:
                marker.write(self.filename)
            os.replace(os.environ["HOLD_H5_MARKER"] + ".part", os.environ["HOLD_H5_MARKER"])  # appears whole
            time.sleep(3600)
        _close(self)

    h5py.File.close = close
"""


def test_killed_run_leaves_no_finished_looking_artifact_and_resumes(reference_run, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_HOLD_HOOK)
    marker = tmp_path / "held"
    env = {**os.environ, "HOLD_H5_WRITE": "superpoints.h5", "HOLD_H5_MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(SNAKEMAKE + ["--configfile", str(TINY)], cwd=work, start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, while superpoints holds its written file
    proc.wait()
    assert marker.exists(), "the superpoints job never finished writing its artifact before the kill"
    scene_dir = work / "results" / "tiny_room"
    assert not (scene_dir / "superpoints.h5").exists()  # nothing under the final name
    leftovers = list(scene_dir.glob(".superpoints.h5.*.tmp"))
    assert [p.name for p in leftovers] == [Path(marker.read_text()).name]  # only the temporary it was writing
    snakemake(["--unlock"], work)  # a SIGKILLed Snakemake leaves its lock behind
    snakemake(["--rerun-incomplete"], work)
    assert not list(scene_dir.glob(".*.tmp"))  # the rerun removed the killed job's temporary
    assert assert_same_artifacts(reference_run / "results", work / "results") >= 2


def test_superpoints_are_reused_across_workflow_folders(tmp_path):
    """Two workflow folders, same scene and parameters: the second takes superpoints.h5 from the cache."""
    from pipeline.commands.synth import run_synth

    scene = run_synth(tmp_path / "scenes" / "cached_room", {"seed": 5, "preset": "tiny", "frames": 4, "width": 64, "height": 48})
    config = tmp_path / "scenes.yaml"
    config.write_text(f"scenes:\n  cached_room: {scene}\n")
    (tmp_path / "cache").mkdir()
    env = {**os.environ, "SNAKEMAKE_OUTPUT_CACHE": str(tmp_path / "cache")}
    outputs = []
    for name in ("first", "second"):
        workdir = tmp_path / name
        workdir.mkdir()
        proc = subprocess.run(SNAKEMAKE + ["--configfile", str(config), "--cache", "superpoints", "--", "results/cached_room/superpoints.h5"],
                              cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    assert "Moving output file results/cached_room/superpoints.h5 to cache" in outputs[0], outputs[0]
    assert "output file results/cached_room/superpoints.h5 from cache" in outputs[1], outputs[1]
    assert_same_artifacts(tmp_path / "first" / "results", tmp_path / "second" / "results")


# --- per-frame stages killed with SIGKILL continue from their last saved frame ------------------

PER_FRAME_STAGES = {
    # stage: (params, artifact stage, resume attribute, datasets compared)
    "keyframe_masks": ({"image_scale": 0.5, "keyframes": {"stride": 2}, "checkpoint_every": 3}, "masks2d",
                       "resumed_from_keyframe", ["masks/bits", "masks/keyframe", "masks/score", "keyframes/n_masks"]),
    "track": ({"checkpoint_every": 5}, "tracks", "resumed_from_step", ["labels", "history/object", "objects/state"]),
    "features_2d": ({"frame_step": 2, "batch_size": 2, "checkpoint_every": 4}, "features_2d", "resumed_from_frame",
                    ["superpoint_features", "point_visibility", "frames_used"]),
}


def stage_command(stage: str, work: Path, out: Path) -> list[str]:
    inputs = {"keyframe_masks": ["scene.h5"], "track": ["scene.h5", "masks2d.h5"],
              "features_2d": ["scene.h5", "superpoints.h5"]}[stage]
    params = json.dumps(PER_FRAME_STAGES[stage][0])
    return [sys.executable, "-m", "pipeline", stage, *(str(work / name) for name in inputs), "--out", str(out),
            "--params", params]


@pytest.fixture(scope="module")
def redkitchen_work(redkitchen_dir, tmp_path_factory):
    """redkitchen ingested, with superpoints and uninterrupted runs of the per-frame stages."""
    work = tmp_path_factory.mktemp("redkitchen")
    subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(redkitchen_dir), "--out", str(work / "scene.h5")], check=True)
    subprocess.run([sys.executable, "-m", "pipeline", "superpoints", str(work / "scene.h5"), "--out", str(work / "superpoints.h5")],
                   check=True)
    for stage in PER_FRAME_STAGES:  # in dependency order: track reads masks2d.h5
        name = "masks2d.h5" if stage == "keyframe_masks" else f"{PER_FRAME_STAGES[stage][1]}.h5"
        subprocess.run(stage_command(stage, work, work / name), check=True, capture_output=True)
    return work


@pytest.mark.parametrize("stage", list(PER_FRAME_STAGES))
def test_sigkilled_per_frame_stage_resumes_from_its_last_saved_frame(stage, redkitchen_work, tmp_path):
    from pipeline.io.artifacts import read_artifact

    params, artifact_stage, resumed_attr, compared = PER_FRAME_STAGES[stage]
    out = tmp_path / "out.h5"
    state = tmp_path / "out.h5.resume" / "state.npz"
    proc = subprocess.Popen(stage_command(stage, redkitchen_work, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # at whatever it is doing: computing, or writing a save or the artifact
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"{stage} ended before it could be killed:\n{proc.stderr.read().decode()}"
    assert not out.exists()  # the artifact being streamed is still under its temporary name

    subprocess.run(stage_command(stage, redkitchen_work, out), check=True, capture_output=True)
    resumed = read_artifact(out, artifact_stage)
    reference_name = "masks2d.h5" if stage == "keyframe_masks" else f"{artifact_stage}.h5"
    reference = read_artifact(redkitchen_work / reference_name, artifact_stage)
    assert resumed.attrs[resumed_attr] > 0, f"{stage} started over instead of resuming"
    assert reference.attrs[resumed_attr] == -1
    for name in compared:
        assert np.array_equal(resumed[name], reference[name]), name
    assert not state.parent.exists()
