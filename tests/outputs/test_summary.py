import json

from pipeline.outputs.summary import read_benchmark, write_summary


def test_summary_tables_from_metrics_and_benchmarks(tmp_path):
    metrics = tmp_path / "s1" / "metrics" / "lifted.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"scene": "s1", "pred_stage": "lifted", "ap": 0.25, "ap50": 0.5, "ap25": 0.75,
                                   "n_pred": 4, "n_gt": 3, "overlap": {"point_accuracy": 0.8, "mean_instance_accuracy": 0.7}}))
    bench = tmp_path / "s1" / "benchmarks" / "ingest.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\n1.5\t0:00:01\t100.0\t200\n2.5\t0:00:02\t120.0\t200\n")
    assert read_benchmark(bench) == {"seconds": 2.0, "max_rss_mib": 110.0}
    metric_rows, timing_rows = write_summary([metrics], [bench], tmp_path / "out.tsv", tmp_path / "out.md")
    assert metric_rows[0]["ap50"] == 0.5 and metric_rows[0]["point_accuracy"] == 0.8
    assert timing_rows == [{"scene": "s1", "rule": "ingest", "seconds": 2.0, "max_rss_mib": 110.0}]
    markdown = (tmp_path / "out.md").read_text()
    assert "| s1 | lifted | 0.250 | 0.500 | 0.750 | 4 | 3 | - | 0.800 | 0.700 |" in markdown
    assert "| s1 | ingest | 2.000 | 110 |" in markdown
    assert (tmp_path / "out.tsv").read_text().splitlines()[1].startswith("s1\tlifted\t0.250")


def test_timing_from_rule_log_for_cached_rules(tmp_path):
    log = tmp_path / "s1" / "logs" / "superpoints.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026 INFO rule.superpoints: rule superpoints\n2026 INFO rule.superpoints: rule superpoints done in 3.5 s (peak RSS 196 MiB)\n")
    _, rows = write_summary([], [log], tmp_path / "t.tsv", tmp_path / "t.md")
    assert rows == [{"scene": "s1", "rule": "superpoints", "seconds": 3.5, "max_rss_mib": 196.0}]


def _metrics(folder, scene, stage, n_pred, **extra):
    path = folder / scene / "metrics" / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"scene": scene, "pred_stage": stage, "ap": 0.1, "ap50": 0.2, "ap25": 0.3,
                                "n_pred": n_pred, "n_gt": 5, **extra}))
    return path


def test_empty_final_labels_and_oracle_boxes_are_flagged(tmp_path):
    files = [_metrics(tmp_path, "a", "ncut", 12), _metrics(tmp_path, "a", "pseudo_labels", 0),
             _metrics(tmp_path, "b", "pseudo_labels", 4, boxes_source="ground_truth (oracle)"),
             _metrics(tmp_path, "c", "ncut", 0), _metrics(tmp_path, "c", "pseudo_labels", 0)]
    rows, _ = write_summary(files, [], tmp_path / "s.tsv", tmp_path / "s.md")
    notes = {(r["scene"], r["stage"]): r["notes"] for r in rows}
    assert notes[("a", "pseudo_labels")].startswith("EMPTY (inputs had up to 12 instances")
    assert notes[("b", "pseudo_labels")] == "oracle boxes"
    # empty everywhere is not a regression of the learning stage
    assert notes[("c", "pseudo_labels")] == "" and notes[("a", "ncut")] == ""
    assert "oracle boxes" in (tmp_path / "s.md").read_text()
