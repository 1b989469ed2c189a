"""Summary tables across scenes: metrics per stage (from metrics JSON) and run time / peak memory
per rule (from Snakemake's benchmark files), as TSV and Markdown."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

METRIC_COLUMNS = ["ap", "ap50", "ap25", "n_pred", "n_gt"]
OVERLAP_COLUMNS = ["point_accuracy", "mean_instance_accuracy"]


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
        rows.append(row)
    return rows


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


def write_summary(metrics_files, benchmark_files, tsv_path, markdown_path) -> tuple[list[dict], list[dict]]:
    metrics = metric_rows(metrics_files)
    timings = benchmark_rows(benchmark_files)
    metric_columns = ["scene", "stage", *METRIC_COLUMNS, *OVERLAP_COLUMNS]
    timing_columns = ["scene", "rule", "seconds", "max_rss_mib"]
    tsv = to_tsv(metrics, metric_columns) + "\n" + to_tsv(timings, timing_columns)
    markdown = (
        "## Pseudo-label quality (class-agnostic, ScanNet rules)\n\n" + to_markdown(metrics, metric_columns)
        + "\n## Run time and peak memory per rule\n\n" + to_markdown(timings, timing_columns)
    )
    for path, text in ((tsv_path, tsv), (markdown_path, markdown)):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return metrics, timings
