"""The README's Performance rows are the benchmark result files rendered (benchmarks/bench_results.py),
so the README cannot quote numbers that no run produced. Update both with `make bench`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_results  # noqa: E402


def test_readme_rows_match_the_benchmark_results():
    rows, blocks = bench_results.rendered_rows(), bench_results.rendered_blocks()
    if not rows and not blocks:
        pytest.skip("no full-mode result files in benchmarks/results/ (run `make bench`)")
    records = bench_results.load_results()
    assert set(rows) >= {f"| `{name}.py` |" for name in records if name in bench_results.ROWS}
    assert set(blocks) == {name for name in records if name in bench_results.BLOCKS}
    problems = bench_results.readme_mismatches(bench_results.README.read_text(), rows, blocks)
    assert not problems, "\n".join(problems) + "\n(run `python benchmarks/bench_results.py --update-readme`)"


def test_result_files_say_when_and_where_they_were_measured():
    for path in sorted(bench_results.RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        assert record["benchmark"] == path.stem and record["quick"] is False, path
        assert record["date"] and record["machine"]["cpu"] and record["machine"]["cores"] >= 1, path


def _record(benchmark, data, quick=False):
    return {"benchmark": benchmark, "date": "2026-01-02", "quick": quick, "command": [],
            "machine": {"cpu": "Test CPU", "cores": 2, "load_average_1min": 0.5}, "data": data}


TRACKING = {"tracker": "reprojection", "device": "cpu", "width": 640, "height": 480, "keyframe_stride": 10,
            "rows": [{"frames": 25, "seconds": 2.0, "cpu_seconds": 2.0, "peak_mib": 200.0},
                     {"frames": 50, "seconds": 5.0, "cpu_seconds": 4.0, "peak_mib": 210.0}]}


def test_a_changed_result_file_makes_the_check_fail_and_update_fixes_it(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "tracking.json").write_text(json.dumps(_record("tracking", TRACKING)))
    (results / "quick.json").write_text(json.dumps(_record("ncut", {}, quick=True)))  # quick runs are never quoted
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n| script | measures | last result |\n|---|---|---|\n| `tracking.py` | old | ~9 fps |\n"
                      "| `scaling.py` | other | kept |\n\nafter\n")
    rows = bench_results.rendered_rows(results)
    assert set(rows) == {"| `tracking.py` |", "| `run_all.py` (`make bench`) |"}
    assert "10.0 fps over 50 frames" in rows["| `tracking.py` |"] and "2026-01-02, 2 cores Test CPU" in rows["| `tracking.py` |"]
    assert len(bench_results.readme_mismatches(readme.read_text(), rows)) == 2  # stale row, missing bench row
    assert bench_results.update_readme(readme, results) == 2
    text = readme.read_text()
    assert not bench_results.readme_mismatches(text, rows)
    assert "| `scaling.py` | other | kept |\n" + rows["| `run_all.py` (`make bench`) |"] + "\n\nafter\n" in text
    TRACKING["rows"][-1]["seconds"] = 10.0
    (results / "tracking.json").write_text(json.dumps(_record("tracking", TRACKING)))
    assert bench_results.readme_mismatches(text, bench_results.rendered_rows(results))  # now stale


PLANNING = {"reference": {"scans": 1500, "jobs": 16503, "seconds": 31.0},
            "rows": [{"scans": 100, "jobs": 1103, "dry_run_s": 7.7, "dry_run_cpu_s": 3.8, "dry_run_mib": 150.0,
                      "sbatch_ungrouped": 1102, "sbatch_grouped": 302, "group_jobs": 300, "single_jobs": 2,
                      "grouped_dry_run_s": 20.1, "grouped_dry_run_cpu_s": 7.0, "grouped_dry_run_mib": 160.0}]}


def test_a_block_is_the_table_between_its_markers_and_update_rewrites_only_it(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "planning.json").write_text(json.dumps(_record("planning", PLANNING)))
    blocks = bench_results.rendered_blocks(results)
    assert set(blocks) == {"planning"}
    table = blocks["planning"]
    assert "| 100 | 1,103 | 3.8 (7.7) | 150 | 1,102 | 302 (3.02) | 7.0 (20.1) |" in table.splitlines()
    assert "2026-01-02, 2 cores Test CPU" in table
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n<!-- results:planning -->\n| old | table |\n<!-- /results:planning -->\nafter\n")
    problems = bench_results.readme_mismatches(readme.read_text(), {}, blocks)
    assert len(problems) == 1 and "planning" in problems[0]
    assert bench_results.update_readme(readme, results) == 1
    text = readme.read_text()
    assert text == f"# x\n\nbefore\n<!-- results:planning -->\n{table}\n<!-- /results:planning -->\nafter\n"
    assert not bench_results.readme_mismatches(text, {}, blocks)
    assert bench_results.update_readme(readme, results) == 0  # unchanged the second time
    assert bench_results.readme_mismatches("# no markers\n", {}, blocks)  # a missing block is reported


def test_make_bench_runs_every_benchmark_the_readme_quotes():
    import re

    import run_all

    assert all((REPO / "benchmarks" / f"{run_all.SCRIPTS.get(name, name)}.py").is_file() for name in run_all.BENCHMARKS)
    assert set(bench_results.BLOCKS) <= set(run_all.BENCHMARKS)  # every README block's results too
    readme = bench_results.README.read_text()
    performance = readme[readme.index("## Performance"):]
    quoted = set(re.findall(r"^\| `(\w+)\.py` \|", performance, flags=re.M)) - {"run_all"}
    assert quoted, "no benchmark rows found in the README's Performance section"
    missing = quoted - set(run_all.BENCHMARKS)
    assert not missing, f"README quotes benchmarks that `make bench` does not run: {sorted(missing)}"


@pytest.mark.parametrize("name", ["superpoints", "ncut", "tracking", "backproject", "fusion", "overlap_assignment"])
def test_benchmarks_take_json_and_quick(name):
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "--json" in run.stdout and "--quick" in run.stdout


def test_result_files_of_other_writers_get_date_and_machine(tmp_path):
    path = tmp_path / "real_scan.json"
    path.write_text(json.dumps({"scenes": ["scene0000_00"], "ap": 0.38}))  # real_scan.py's own format
    bench_results.ensure_envelope(path, "real_scan", False, ["real_scan.py", "--seeds", "0"])
    record = json.loads(path.read_text())
    assert record["benchmark"] == "real_scan" and record["quick"] is False and record["date"]
    assert record["machine"]["cores"] >= 1 and record["data"] == {"scenes": ["scene0000_00"], "ap": 0.38}
    bench_results.ensure_envelope(path, "real_scan", True, [])  # already has them: unchanged
    assert json.loads(path.read_text()) == record


def test_scaling_keep_takes_over_only_the_stages_this_run_did_not_measure(tmp_path):
    import scaling

    resolution = {"color": [1296, 968], "depth": [640, 480], "source": "redkitchen upsampled"}
    rows = [{"frames": n, "seconds": 2.0 * n, "peak_mib": 900.0, "cpu_seconds": float(n)} for n in (20, 40)]
    earlier = _record("scaling_scannet", {"frames": [20, 40], "resolution": resolution,
                                          "stages": {"features_2d": rows, "lift": rows},
                                          "artifact_mib": {"20": {"features_2d.h5": 0.3, "lifted.h5": 9.0}}})
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))
    results = {"lift": {20: (1.0, 100.0, 0.5), 40: (2.0, 101.0, 1.0)}}
    sizes = {20: {"lifted.h5": 0.4}, 40: {"lifted.h5": 0.8}}
    taken = scaling.take_over(path, [20, 40], resolution, results, sizes)
    assert set(taken) == {"features_2d"} and taken["features_2d"]["date"] == "2026-01-02"
    assert results["lift"][40] == (2.0, 101.0, 1.0)  # measured now: kept
    assert results["features_2d"][40] == (80.0, 900.0, 40.0)
    assert sizes[20] == {"lifted.h5": 0.4, "features_2d.h5": 0.3}  # only the sizes this run lacks
    with pytest.raises(ValueError, match="other frames"):
        scaling.take_over(path, [20, 40], "redkitchen", {}, {})


def test_a_perturbed_copy_keeps_each_point_with_its_own_label(tmp_path):
    """benchmarks/ncut.py --perturbed: a subsample, rotated about z and jittered, whose ground-truth
    line i still belongs to its point i (each label here names its source point)."""
    import numpy as np

    import ncut as ncut_benchmark
    from pipeline.io.ply import read_ply, write_ply

    source = tmp_path / "scan"
    source.mkdir()
    rng = np.random.default_rng(0)
    points = rng.uniform(-2, 2, (500, 3)).astype(np.float32)
    write_ply(source / "points.ply", points, colors=rng.integers(0, 256, (500, 3)).astype(np.uint8))
    (source / "scan.txt").write_text("\n".join(str(1000 + i) for i in range(500)) + "\n")
    index = 1  # keeps 70 % of the points, turned by 0.6 rad
    keep, angle = ncut_benchmark.PERTURBATIONS[index]
    out = ncut_benchmark.perturbed_copy(source, tmp_path / "copies", index)
    copy = read_ply(out / "points.ply")
    labels = np.array((out / f"{out.name}.txt").read_text().split(), int)
    assert len(copy.vertices) == len(labels) == int(keep * 500) and len(set(labels)) == len(labels)
    c, s = np.cos(angle), np.sin(angle)
    back = copy.vertices.astype(np.float64) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])  # inverse rotation
    assert np.abs(back - points[labels - 1000]).max() < 0.02  # 3 mm jitter
    assert np.abs(copy.vertices - points[labels - 1000]).max() > 0.1  # it did turn
    (source / "scan.txt").write_text("1\n2\n")
    with pytest.raises(ValueError, match="2 labels for 500 points"):
        ncut_benchmark.perturbed_copy(source, tmp_path / "copies", 0)
