"""Summary tables across scenes: metrics per stage (from metrics JSON) and run time / peak memory
per rule (from Snakemake's benchmark files), as TSV and Markdown."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

from pipeline.io.atomic import write_text

METRIC_COLUMNS = ["ap", "ap50", "ap25", "n_pred", "n_gt"]
OVERLAP_COLUMNS = ["object_point_accuracy", "point_accuracy", "mean_instance_accuracy"]
# "oracle boxes" (labels made from boxes built from ground truth), "EMPTY ..." (final labels with no
# instance where the scene's inputs had some).
NOTES_COLUMN = "notes"
# The GT class convention that scored each row ("-" for metrics written before it was recorded).
CONVENTION_COLUMN = "gt_classes"
CONVENTION_NOTE = (
    "gt_classes: scannet18 = ScanNet's 18 benchmark classes scored, every other instance void; "
    "all_objects = every annotated instance but evaluate.ignore_labels (default wall, floor, ceiling)."
)


def read_benchmark(path) -> dict:
    """Seconds and peak RSS (MiB) from a Snakemake benchmark TSV (mean over repeats)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return {"seconds": math.nan, "max_rss_mib": math.nan}

    def mean(key):
        values = [float(r[key]) for r in rows if r.get(key) not in (None, "", "-", "NA")]
        return sum(values) / len(values) if values else math.nan

    return {"seconds": mean("s"), "max_rss_mib": mean("max_rss")}


_LOG_TIMING = re.compile(r"rule (\S+) done in ([0-9.]+) s \(peak RSS ([0-9.]+) MiB\)")


def read_log_timing(path) -> dict:
    """Seconds and peak RSS (MiB) from the last 'rule X done in S s (peak RSS M MiB)' line of a rule log."""
    matches = _LOG_TIMING.findall(Path(path).read_text(errors="replace"))
    if not matches:
        return {"seconds": math.nan, "max_rss_mib": math.nan}
    _, seconds, rss = matches[-1]
    return {"seconds": float(seconds), "max_rss_mib": float(rss)}


def metric_rows(metrics_files: list) -> list[dict]:
    """One row per (scene, stage) from metrics JSON files written by `pipeline evaluate`."""
    rows = []
    for path in sorted(map(Path, metrics_files)):
        data = json.loads(path.read_text())
        row = {"scene": data.get("scene", path.parent.parent.name), "stage": data.get("pred_stage", path.stem)}
        for key in METRIC_COLUMNS:
            row[key] = data.get(key)
        overlap = data.get("overlap") or {}
        for key in OVERLAP_COLUMNS:
            row[key] = overlap.get(key)
        row[CONVENTION_COLUMN] = data.get(CONVENTION_COLUMN)
        row[NOTES_COLUMN] = "oracle boxes" if str(data.get("boxes_source", "")).startswith("ground_truth") else ""
        rows.append(row)
    flag_empty_final_labels(rows)
    return rows


def flag_empty_final_labels(rows: list[dict], final_stage: str = "pseudo_labels") -> None:
    """Mark final labels that are empty where a scene's inputs had instances: never a quiet pass."""
    inputs_had = {}
    for row in rows:
        if row["stage"] != final_stage and (row.get("n_pred") or 0) > 0:
            inputs_had[row["scene"]] = max(inputs_had.get(row["scene"], 0), row["n_pred"])
    for row in rows:
        if row["stage"] == final_stage and not row.get("n_pred") and row["scene"] in inputs_had:
            note = f"EMPTY (inputs had up to {inputs_had[row['scene']]} instances; see logs/predict.log)"
            row[NOTES_COLUMN] = "; ".join(filter(None, [row.get(NOTES_COLUMN), note]))


def benchmark_rows(timing_files: list) -> list[dict]:
    """One row per (scene, rule) from results/<scene>/benchmarks/<rule>.tsv or, for rules that
    cannot have a benchmark file (cached ones), results/<scene>/logs/<rule>.log."""
    rows = []
    for path in sorted(map(Path, timing_files), key=lambda p: (p.parent.parent.name, p.stem)):
        timing = read_log_timing(path) if path.suffix == ".log" else read_benchmark(path)
        rows.append({"scene": path.parent.parent.name, "rule": path.stem, **timing})
    return rows


def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def to_tsv(rows: list[dict], columns: list[str]) -> str:
    lines = ["\t".join(columns)]
    lines += ["\t".join(_format(row.get(c)) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def to_markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def conventions_by_scene(metric_rows: list[dict]) -> dict[str, str]:
    """Scene -> the GT class convention(s) its metrics were scored with, e.g. {"s1": "scannet18"}."""
    seen: dict[str, set] = {}
    for row in metric_rows:
        seen.setdefault(row["scene"], set()).add(row.get(CONVENTION_COLUMN) or "-")
    return {scene: "/".join(sorted(values)) for scene, values in sorted(seen.items())}


def write_summary(metrics_files, benchmark_files, tsv_path, markdown_path) -> tuple[list[dict], list[dict]]:
    metrics = metric_rows(metrics_files)
    timings = benchmark_rows(benchmark_files)
    metric_columns = ["scene", "stage", *METRIC_COLUMNS, *OVERLAP_COLUMNS, CONVENTION_COLUMN, NOTES_COLUMN]
    timing_columns = ["scene", "rule", "seconds", "max_rss_mib"]
    tsv = to_tsv(metrics, metric_columns) + "\n" + to_tsv(timings, timing_columns)
    markdown = (
        "## Pseudo-label quality (class-agnostic, ScanNet rules)\n\n" + to_markdown(metrics, metric_columns)
        + "\n" + CONVENTION_NOTE + "\n"
        + "\n## Run time and peak memory per rule\n\n" + to_markdown(timings, timing_columns)
    )
    for path, text in ((tsv_path, tsv), (markdown_path, markdown)):
        write_text(path, text)
    return metrics, timings
