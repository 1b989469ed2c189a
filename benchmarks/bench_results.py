"""Benchmark results as JSON files, and the README rows made from them.

Every benchmark takes ``--json PATH`` and writes one file::

    {"benchmark": "superpoints", "date": "2026-12-02", "quick": false,
     "machine": {"cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.4, "python": "3.11.7", ...},
     "command": [...], "data": {...the benchmark's own numbers...}}

``make bench`` (``benchmarks/run_all.py``) runs every benchmark in full mode into
``benchmarks/results/`` and then rewrites the README's Performance rows of the benchmarks that have
a renderer here (``ROWS``) from those files; ``make bench-quick`` runs short versions into
``benchmarks/out/quick/`` (not kept, README untouched). ``tests/test_benchmark_results.py`` checks
that the README's rows are exactly what these files render, so the README cannot drift from the
measurements it quotes.

    python benchmarks/bench_results.py --check          # README rows == rendered rows? (exit 1 if not)
    python benchmarks/bench_results.py --update-readme  # rewrite those rows in place
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

from pipeline.io.atomic import write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on (no host name)."""
    info = {"cpu": _cpu_model(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "python": platform.python_version(), "system": platform.system()}
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)  # how busy the machine was
    except OSError:
        pass
    import numpy

    info["numpy"] = numpy.__version__
    return info


def write_result(path: str | os.PathLike | None, benchmark: str, data: dict, quick: bool = False) -> Path | None:
    """Write one benchmark's numbers (``data``: JSON-serialisable) with date and machine; None: no path."""
    if path is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": benchmark, "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
              "quick": bool(quick), "machine": machine(), "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
              "data": data}
    write_text(path, json.dumps(record, indent=1, default=_jsonable) + "\n")
    print(f"results written to {path}")
    return path


def ensure_envelope(path: Path, benchmark: str, quick: bool, command: list[str]) -> None:
    """Give a result file written by a benchmark's own code (real_scan.py) the date and machine:
    its JSON becomes ``data`` of the same record ``write_result`` writes. Files that have them stay."""
    path = Path(path)
    if not path.is_file():
        return
    content = json.loads(path.read_text())
    if isinstance(content, dict) and {"benchmark", "date", "machine", "data"} <= set(content):
        return
    record = {"benchmark": benchmark, "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
              "quick": bool(quick), "machine": machine(), "command": command, "data": content}
    write_text(path, json.dumps(record, indent=1) + "\n")


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# README rows
# ---------------------------------------------------------------------------------------------


def _where(record: dict) -> str:
    m = record["machine"]
    load = f", load {m['load_average_1min']:g}" if "load_average_1min" in m else ""
    return f"{record['date']}, {m['cores']} cores {m['cpu']}{load}"


def _superpoints_row(record: dict) -> str:
    d = record["data"]
    ref, big = d["redkitchen"], d.get("large")
    kernels = {"c": "C kernels (built once with the system C compiler into `~/.cache/scan-pseudolabels`)",
               "numba": "numba kernels (no C compiler found)"}[d["kernels"]]
    identical = "identical segments" if ref["identical"] and ref["cli_identical"] else f"ARI {ref['ari']:.6f}"
    text = (f"{identical}; in process {ref['warm_s'] * 1000:.0f} ms ({ref['warm_s'] / ref['reference_s']:.2f}x the "
            f"C++ tool's {ref['reference_s']:g} s); whole process (`python -m pipeline superpoints`: start-up, PLY "
            f"read, JSON written) {ref['cli_s']:.2f} s wall, {ref['cli_cpu_s']:.2f} s CPU "
            f"({ref['cli_s'] / ref['reference_s']:.1f}x / {ref['cli_cpu_s'] / ref['reference_s']:.1f}x) with the {kernels}")
    if d["kernels"] == "c":
        text += (f", {ref['numba_cli_s']:.2f} s ({ref['numba_cli_s'] / ref['reference_s']:.1f}x) with the numba "
                 f"fallback")
    if big:
        text += (f"; {big['vertices'] / 1000:.0f}k vertices: in process {big['warm_s'] * 1000:.0f} ms "
                 f"({big['warm_s'] / big['reference_s']:.2f}x), whole process {big['cli_s']:.2f} s wall, "
                 f"{big['cli_cpu_s']:.2f} s CPU ({big['cli_s'] / big['reference_s']:.1f}x / "
                 f"{big['cli_cpu_s'] / big['reference_s']:.1f}x the C++ tool's {big['reference_s']:g} s; goal 3x)")
    return (f"| `superpoints.py` | Felzenszwalb superpoints vs ScanNet's Segmentator (C++ -O3; its times from "
            f"`../shared/data/README.md`) on redkitchen ({ref['vertices'] / 1000:.0f}k vertices)"
            + (f" and a {big['vertices'] / 1000:.0f}k-vertex mesh (redkitchen plus a shifted part of it)" if big else "")
            + f" | {text} ({_where(record)}) |")


def _tracking_row(record: dict) -> str:
    d = record["data"]
    rows = d["rows"]
    last = rows[-1]
    peaks = " / ".join(f"{r['peak_mib']:.0f}" for r in rows)
    counts = " / ".join(str(r["frames"]) for r in rows)
    return (f"| `tracking.py` | the `track` stage itself (`run_track`: keyframe masks read, label maps streamed to "
            f"`tracks.h5`), {d['tracker']} tracker, {d['width']}x{d['height']}, in a fresh process per frame count "
            f"| {last['frames'] / last['seconds']:.1f} fps over {last['frames']} frames "
            f"({last['frames'] / last['cpu_seconds']:.1f} frames per CPU second); peak RSS {peaks} MiB for "
            f"{counts} frames ({_where(record)}) |")


def _ncut_row(record: dict) -> str:
    d = record["data"]
    scenes = {s["scene"]: s for s in d["scenes"]}
    iou = "1.000" if d["min_iou"] >= 0.9995 else f">= {d['min_iou']:.3f}"
    parts = [f"reference and production both best of {d['repeats']}; every mask IoU {iou}"
             if d["n_below"] == 0 else f"{d['n_below']} masks below IoU 0.95 (min {d['min_iou']:.3f})"]
    if "redkitchen" in scenes:
        s = scenes["redkitchen"]
        parts.append(f"{s['ref_s'] / s['prod_s']:.0f}x faster on redkitchen ({s['ref_s']:.2f} s vs {s['prod_s']:.2f} s; "
                     f"the dense reference's speed depends on the LAPACK build)")
    parts.append(f"{d['ref_s'] / d['prod_s']:.0f}x over all scenes")
    if "scene0000_00" in scenes and scenes["scene0000_00"]["ap"] is not None:
        s = scenes["scene0000_00"]
        parts.append(f"scene0000_00 (18 classes) AP / AP50 / AP25 {s['ap']:.3f} / {s['ap50']:.3f} / {s['ap25']:.3f}, "
                     f"{s['masks']} masks covering {100 * s['covered']:.0f} % of the points, largest {100 * s['largest']:.0f} %")
    if d.get("synthetic_mean"):
        m = d["synthetic_mean"]
        parts.append(f"{m['rooms']} generated rooms {m['ap']:.3f} / {m['ap50']:.3f} / {m['ap25']:.3f}")
    if d.get("perturbed_mean"):
        m = d["perturbed_mean"]
        parts.append(f"{m['copies']} perturbed copies of scene0000_00 {m['ap']:.3f} / {m['ap50']:.3f} / {m['ap25']:.3f} "
                     f"(their superpoints as instances: AP50 {m['superpoints_ap50']:.3f})")
    return (f"| `ncut.py` | masked NCut vs a dense generalised eigensolver, and mask quality on scene0000_00 (and "
            f"`--perturbed` copies of it) and synthetic rooms | {'; '.join(parts)} ({_where(record)}) |")


def _train_memory_row(record: dict) -> str:
    d = record["data"]
    rows, held = d["rows"], d.get("held") or []

    def joined(items, key, form):
        return " / ".join(format(item[key], form) for item in items)

    counts = joined(rows, "scenes", "d")
    text = (f"peak RSS {joined(rows, 'peak_mib', '.0f')} MiB for {counts} scenes: {d['ratio']:.2f}x from "
            f"{rows[0]['scenes']} to {rows[-1]['scenes']} (goal <= {d['goal_ratio']:g}x); "
            f"{joined(rows, 's_per_step', '.2f')} s per step")
    if held:
        text += (f"; every scene held in memory (scene_cache = scenes, as before streaming): "
                 f"{joined(held, 'peak_mib', '.0f')} MiB, {joined(held, 's_per_step', '.2f')} s per step")
    return (f"| `train_memory.py` | the `train` stage as its own process on {counts} copies of {d['data']} "
            f"({d['mode']} mode, {d['preset']} preset, {d['device']}, {d['steps']} steps; scenes stream through "
            f"`train.scene_cache`) | {text} ({_where(record)}) |")


def _bench_row(records: dict) -> str:
    dates = sorted(r["date"] for r in records.values())
    return (f"| `run_all.py` (`make bench`) | every benchmark above, full mode, each writing JSON to `benchmarks/results/` "
            f"(`make bench-quick`: short runs into `benchmarks/out/quick/`) | the rows of "
            f"{', '.join(f'`{name}.py`' for name in sorted(records))} are rendered from those files "
            f"(`benchmarks/bench_results.py`; `tests/test_benchmark_results.py` checks them); measured "
            f"{dates[0]}{' to ' + dates[-1] if dates[-1] != dates[0] else ''} |")


ROWS = {"superpoints": _superpoints_row, "tracking": _tracking_row, "ncut": _ncut_row,
        "train_memory": _train_memory_row}


# ---------------------------------------------------------------------------------------------
# README blocks: whole tables between <!-- results:NAME --> and <!-- /results:NAME --> lines
# ---------------------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _planning_block(record: dict) -> str:
    d = record["data"]
    ref = d["reference"]
    lines = ["| scans | jobs planned | `snakemake -n`: CPU s (wall s) | peak MiB | sbatch jobs, one per rule job "
             "| `--profile profiles/slurm`: sbatch jobs (per scan) | its dry run: CPU s (wall s) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in d["rows"]:
        lines.append(f"| {_n(r['scans'])}{' *' if r.get('earlier') else ''} | {_n(r['jobs'])} | {r['dry_run_cpu_s']:.1f} ({r['dry_run_s']:.1f}) | "
                     f"{r['dry_run_mib']:.0f} | {_n(r['sbatch_ungrouped'])} | {_n(r['sbatch_grouped'])} "
                     f"({r['sbatch_grouped'] / r['scans']:.2f}) | {r['grouped_dry_run_cpu_s']:.1f} "
                     f"({r['grouped_dry_run_s']:.1f}) |")
    lines.append("")
    earlier = [r for r in d["rows"] if r.get("earlier")]
    lines.append(f"`benchmarks/planning.py`, {_where(record)}"
                 + "".join(f"; * from the run of {r['earlier']['date']}"
                           + (f" (load {r['earlier']['load']:g})" if r["earlier"].get("load") is not None else "")
                           + (f", {r['earlier']['note']}" if r["earlier"].get("note") else "") for r in earlier[:1])
                 + f". The issue's reference: {_n(ref['jobs'])} jobs for {_n(ref['scans'])} scans planned in "
                   f"{ref['seconds']:g} s.")
    return "\n".join(lines)


def _scaling_scannet_block(record: dict) -> str:
    d = record["data"]
    frames = d["frames"]
    first, last = frames[0], frames[-1]
    flat = d.get("flat_memory", 1.10)
    earlier = d.get("earlier", {})
    counts = " / ".join(_n(n) for n in frames)
    lines = [f"| stage | CPU s, {counts} frames | CPU s per added frame | peak MiB, {counts} frames | "
             f"{_n(last)} / {_n(first)} | memory flat (<= {flat:.2f}x) |", "|---|---:|---:|---:|---:|---|"]
    notes = {"features_2d": " (every frame)", "keyframe_masks": " (every 10th frame a keyframe)"}
    for stage in ("fuse_mesh", "features_2d", "keyframe_masks", "track", "lift"):
        rows = {r["frames"]: r for r in d["stages"].get(stage, [])}
        if not all(n in rows for n in frames):
            continue
        ratio = rows[last]["peak_mib"] / rows[first]["peak_mib"]
        slope = (rows[last]["cpu_seconds"] - rows[first]["cpu_seconds"]) / (last - first)
        mark = " *" if stage in earlier else ""
        lines.append(f"| {stage}{notes.get(stage, '')}{mark} | "
                     + " / ".join(f"{rows[n]['cpu_seconds']:.1f}" for n in frames) + f" | {slope:.3f} | "
                     + " / ".join(f"{rows[n]['peak_mib']:.0f}" for n in frames)
                     + f" | {ratio:.2f}x | {'yes' if ratio <= flat else 'NO'} |")
    sizes = d.get("artifact_mib", {})
    if all(str(n) in sizes for n in frames):
        names = [name for name in sizes[str(last)] if all(name in sizes[str(n)] for n in frames)]
        lines.append("")
        lines.append(f"Artifacts at {counts} frames, MiB: " + "; ".join(
            f"{name} " + " / ".join(f"{sizes[str(n)][name]:.1f}" for n in frames) for name in names) + ".")
    lines.append("")
    text = f"`benchmarks/scaling.py --scannet`, {_where(record)}"
    for stage, run in earlier.items():
        text += f"; * {stage} from the run of {run['date']} (load {run['load']:g})" if run.get("load") is not None \
            else f"; * {stage} from the run of {run['date']}"
    lines.append(text + ".")
    return "\n".join(lines)


def _capacity_block(record: dict) -> str:
    d = record["data"]
    frames, scan_frames, scans = d["frames"], d["scan_frames"], d["scans"]
    gpu_rules = set(d.get("gpu_rules", ()))
    group_of = {rule: group for group, members in d.get("groups", {}).items() for rule in members}
    slopes = d.get("cpu_s_per_frame_applied", {})
    order = ["ingest", "superpoints", "features_2d", "features_3d", "keyframe_masks", "track", "ncut", "lift",
             "predict", "evaluate", "pictures", "export"]
    rules = [r for r in order if r in d["rules"]] + sorted(set(d["rules"]) - set(order) - {"train"})
    lines = [f"| rule | `gpu=1` | group job | CPU s, {_n(frames)} frames | peak MiB | CPU s per added frame | "
             f"CPU s, {_n(scan_frames)} frames |", "|---|---|---|---:|---:|---:|---:|"]
    for rule in rules:
        row = d["rules"][rule]
        lines.append(f"| {rule} | {'yes' if rule in gpu_rules else ''} | {group_of.get(rule, '')} | "
                     f"{row['cpu_s']:.1f} | {row['peak_mib']:.0f} | {slopes.get(rule, 0.0):.4f} | "
                     f"{d['per_scan_cpu_s'][rule]:.1f} |")
    total = sum(d["per_scan_cpu_s"].values())
    measured = sum(d["rules"][r]["cpu_s"] for r in rules)
    lines.append(f"| **one scan** | | | {measured:.1f} | | | **{total:.1f}** |")
    if "train" in d["rules"]:
        t = d["rules"]["train"]
        lines.append(f"| train (once, all scans) | {'yes' if 'train' in gpu_rules else ''} | | {t['cpu_s']:.1f} | "
                     f"{t['peak_mib']:.0f} | | |")
    groups = d.get("groups_cpu_s", {})
    lines.append("")
    lines.append(f"{_n(scans)} scans of {_n(scan_frames)} frames: **{d['core_hours']:.0f} core-hours** "
                 f"({d['gpu_rules_core_hours']:.0f} in the `gpu=1` rules run on CPUs, {d['cpu_rules_core_hours']:.0f} "
                 f"in the others); per group job and scan: "
                 + ", ".join(f"{group} {s:.0f} CPU s" for group, s in groups.items()) + ".")
    jobs = d.get("slurm_jobs")
    if jobs and {"prep", "masks", "labels"} <= set(groups):
        hours = {name: s * scans / jobs / 3600 for name, s in groups.items()}
        lines.append(f"With `jobs: {jobs}` (`profiles/slurm`) and the rules on CPUs, counting a job's CPU seconds as its "
                     f"wall time (one busy core per job): prep and masks of all scans {hours['prep'] + hours['masks']:.1f} h, "
                     f"then train, then labels {hours['labels']:.1f} h.")
    # disk: the scan's files by artifact (folders summed), grown per frame where scaling.py measured growth
    per_frame = d.get("disk_mib_per_frame", {})
    frame_artifacts = set(d.get("frame_artifacts", ()))
    by_artifact: dict[str, float] = {}
    for name, mib in d["disk_mib"].items():
        top = name.split("/")[0]
        key = top + "/" if "/" in name else name
        by_artifact[key] = by_artifact.get(key, 0.0) + mib
    lines.append("")
    lines.append(f"| artifact | MiB, {_n(frames)} frames | KiB per added frame | MiB, {_n(scan_frames)} frames |")
    lines.append("|---|---:|---:|---:|")
    extra = scan_frames - frames
    for name, mib in sorted(by_artifact.items(), key=lambda kv: -kv[1]):
        growth = per_frame.get(name, 0.0) if name in frame_artifacts else 0.0
        if mib + growth * extra < 0.05:
            continue
        lines.append(f"| {name} | {mib:.1f} | {1024 * growth:.1f} | {mib + growth * extra:.1f} |")
    small = sum(mib for name, mib in by_artifact.items()
                if mib + (per_frame.get(name, 0.0) if name in frame_artifacts else 0.0) * extra < 0.05)
    lines.append(f"| (logs, benchmark files, other small files) | {small:.2f} | | {small:.2f} |")
    lines.append(f"| **one scan** | {sum(by_artifact.values()):.1f} | | **{d['scan_disk_mib']:.1f}** |")
    lines.append("")
    where = _where(d["measured"]) if d.get("measured") else _where(record)  # --measured: where the DAG ran
    source = d.get("scaling")
    lines.append(f"{_n(scans)} scans: **{d['scan_disk_mib'] * scans / 1024:.0f} GiB**. `benchmarks/capacity.py`, "
                 f"{where}" + (f"; CPU s and KiB per added frame from `scaling.py --scannet` of {source['date']}"
                               if source else "; not extrapolated per frame (no --scaling)") + ".")
    return "\n".join(lines)


BLOCKS = {"capacity": _capacity_block, "scaling_scannet": _scaling_scannet_block, "planning": _planning_block}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- results:{name} -->", f"<!-- /results:{name} -->"


def rendered_blocks(folder: Path = RESULTS) -> dict[str, str]:
    """Block name -> the README lines between its markers, rendered from the result files."""
    return {name: BLOCKS[name](record) for name, record in load_results(folder).items() if name in BLOCKS}


def _block_span(lines: list[str], name: str) -> tuple[int, int] | None:
    """Indices of a block's begin and end marker lines (None: the README has no such block)."""
    begin, end = _markers(name)
    stripped = [line.rstrip("\n") for line in lines]
    if begin not in stripped or end not in stripped:
        return None
    start = stripped.index(begin)
    return start, stripped.index(end, start)


def load_results(folder: Path = RESULTS) -> dict[str, dict]:
    """Full-mode result files that have a README row or block, by benchmark name."""
    records = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if (record.get("benchmark") in ROWS or record.get("benchmark") in BLOCKS) and not record.get("quick"):
            records[record["benchmark"]] = record
    return records


def rendered_rows(folder: Path = RESULTS) -> dict[str, str]:
    """Row key (its first cell) -> the README row rendered from the result files."""
    records = {name: record for name, record in load_results(folder).items() if name in ROWS}
    rows = {f"| `{name}.py` |": ROWS[name](record) for name, record in records.items()}
    if records:
        rows["| `run_all.py` (`make bench`) |"] = _bench_row(records)
    return rows


def readme_mismatches(readme: str, rows: dict[str, str], blocks: dict[str, str] | None = None) -> list[str]:
    """What differs between the README and the rendered rows and blocks (empty: they match)."""
    problems = []
    lines = readme.splitlines()
    for name, block in (blocks or {}).items():
        span = _block_span(lines, name)
        if span is None:
            problems.append(f"README has no block {' ... '.join(_markers(name))}")
        elif "\n".join(lines[span[0] + 1:span[1]]) != block:
            problems.append(f"README block {name!r} differs from the results")
    for key, row in rows.items():
        found = [line for line in readme.splitlines() if line.startswith(key)]
        if len(found) != 1:
            problems.append(f"README has {len(found)} rows starting with {key!r} (expected 1)")
        elif found[0] != row:
            problems.append(f"README row differs from the results:\n  README:   {found[0]}\n  rendered: {row}")
    return problems


def update_readme(readme_path: Path = README, folder: Path = RESULTS) -> int:
    """Rewrite the README rows that the result files render (only those lines) and the blocks between
    their markers; the bench row is added after the last row when missing. Returns the number of rows
    and blocks changed."""
    rows = rendered_rows(folder)
    lines = readme_path.read_text().splitlines(keepends=True)
    changed, last = 0, None
    for name, block in rendered_blocks(folder).items():  # blocks replace what is between their markers
        span = _block_span(lines, name)
        new_lines = [line + "\n" for line in block.split("\n")]
        if span is not None and lines[span[0] + 1:span[1]] != new_lines:
            lines[span[0] + 1:span[1]] = new_lines
            changed += 1
    for i, line in enumerate(lines):
        for key, row in rows.items():
            if line.startswith(key):
                last = i
                if line.rstrip("\n") != row:
                    lines[i] = row + "\n"
                    changed += 1
    bench_key = "| `run_all.py` (`make bench`) |"
    if bench_key in rows and not any(line.startswith(bench_key) for line in lines) and last is not None:
        # after the last row of the same table
        end = last
        while end + 1 < len(lines) and lines[end + 1].startswith("| "):
            end += 1
        lines.insert(end + 1, rows[bench_key] + "\n")
        changed += 1
    if changed:
        readme_path.write_text("".join(lines))
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 when the README rows differ from the results")
    group.add_argument("--update-readme", action="store_true", help="rewrite the README rows from the results")
    args = parser.parse_args(argv)
    if args.update_readme:
        print(f"README: {update_readme(README, args.results)} row(s) updated")
        return 0
    rows, blocks = rendered_rows(args.results), rendered_blocks(args.results)
    if args.check:
        problems = readme_mismatches(README.read_text(), rows, blocks)
        print("\n".join(problems) or f"README matches {len(rows)} rendered rows and {len(blocks)} blocks")
        return 1 if problems else 0
    print("\n".join([*rows.values(), *(f"{_markers(n)[0]}\n{b}\n{_markers(n)[1]}" for n, b in blocks.items())]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
