"""The Snakemake workflow: lint, config validation and a real run of the tiny configuration."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.io.artifacts import read_artifact
from pipeline.io.ply import write_ply

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def run_snakemake(args, cwd, timeout=900):
    proc = subprocess.run(SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_lint_is_clean():
    code, output = run_snakemake(["--lint"], REPO)
    assert code == 0, output
    assert "Lints for" not in output, output


def test_invalid_config_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest:\n  verify_images: sometimes\n")
    code, output = run_snakemake(["-n", "--configfile", str(bad)], tmp_path)
    assert code != 0
    assert "verify_images" in output


def test_user_scenes_replace_the_demo(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"scenes:\n  kitchen: {tmp_path}/kitchen\n")
    (tmp_path / "kitchen").mkdir()
    write_ply(tmp_path / "kitchen" / "points.ply", [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    code, output = run_snakemake(["-n", "--configfile", str(mine)], tmp_path)
    assert code == 0, output
    assert "kitchen" in output and "demo_room" not in output


def test_tiny_config_runs_end_to_end(tmp_path):
    code, output = run_snakemake(["--cores", "2", "--configfile", str(REPO / "tests" / "tiny_config.yaml")], tmp_path)
    assert code == 0, output
    scene = read_artifact(tmp_path / "results" / "tiny_room" / "scene.h5", "scene", required=["vertices", "gt/instance"])
    assert scene.attrs["n_frames"] == 12 and scene.attrs["has_gt"]
    assert (tmp_path / "results" / "tiny_room" / "logs" / "ingest.log").read_text().count("done in") == 1
    assert (tmp_path / "results" / "tiny_room" / "benchmarks" / "ingest.tsv").is_file()
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "| tiny_room | lifted |" in summary and "| tiny_room | superpoints |" in summary
    for picture in ("overview", "views", "tracking"):
        assert (tmp_path / "results" / "tiny_room" / "pictures" / f"{picture}.png").stat().st_size > 1000
    code, output = run_snakemake(["--report", "report.html", "--configfile", str(REPO / "tests" / "tiny_config.yaml")], tmp_path)
    assert code == 0, output
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "overview.png" in html and "summary.md" in html
    # the ScanNet-format export of the final labels scores what the HDF5 labels scored
    import json

    from pipeline.outputs.evaluate import instance_ap
    from pipeline.outputs.export import read_scannet_benchmark

    results = tmp_path / "results" / "tiny_room"
    masks, _, scores = read_scannet_benchmark(results / "export" / "scannet" / "tiny_room.txt")
    exported = instance_ap(scene["gt/instance"], scene["gt/instance_label"], masks, scores)
    final = "pseudo_labels" if (results / "pseudo_labels.h5").exists() else "lifted"  # what the DAG exports
    stored = json.loads((results / "metrics" / f"{final}.json").read_text())
    assert exported.ap == pytest.approx(stored["ap"]) and exported.ap50 == pytest.approx(stored["ap50"])
    assert (results / "export" / "spformer" / "train" / "tiny_room_inst_nostuff.pth").is_file()
    # the default run's final labels used no ground truth: box mode from the room's boxes.json
    labels = read_artifact(results / "pseudo_labels.h5", "pseudo_labels")
    assert labels.attrs["mode"] == "box" and labels.attrs["boxes_source"] == "boxes.json"
    assert scene.attrs["boxes_source"] == "boxes.json" and "oracle boxes" not in summary
    assert (results / "export" / "tiny_room_instances.ply").is_file()
    # a second run has nothing to do
    code, output = run_snakemake(["--cores", "2", "-n", "--configfile", str(REPO / "tests" / "tiny_config.yaml")], tmp_path)
    assert code == 0 and "Nothing to be done" in output, output
