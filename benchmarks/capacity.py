"""How long, on what, for all of ScanNet: per-scan cost of every rule, cluster-hours and disk.

1. Runs the whole DAG (`snakemake --cores 2 --resources gpu=1`, default config) on one scan at
   ScanNet's resolution: redkitchen's real frames with colour upsampled to 1296x968, depth
   640x480, its 89k-vertex mesh (as `benchmarks/scaling.py --scannet` makes them; --frames, default
   250). Then every per-scan rule runs again as its own `python -m pipeline` process on the DAG's
   inputs, model and config: its CPU seconds (user + system) and peak RSS come from the kernel
   (Snakemake's benchmark files sample the processes and are shown beside them; three cached rules
   have none). `train` is as Snakemake measured it. Disk: every file the scan's rules wrote.
2. Extrapolates to ScanNet's mean scan (--scan-frames, default 1,650: 2.5 M frames / 1,513 scans)
   with the CPU seconds per frame of `benchmarks/scaling.py --scannet --json` (--scaling), for the
   stages that read frames, and the artifact growth per frame of the same run for disk.
3. Multiplies by the scan count (--scans, default 1,513) into core-hours, split into the rules that
   declare a GPU (`resources: gpu=1`; with the default weight-free backends they run on CPUs, and
   that is what is measured; GPU time with SAM / SAM 2 / DINO / CSC needs a GPU and is not measured
   here) and the others. `train` gathers all scans: its cost depends on its preset, not on scans,
   and is reported as measured for this one scan only.

    .venv/bin/python benchmarks/capacity.py --scaling scaling_scannet.json [--frames 250] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_results import write_result  # noqa: E402
from scaling import measure, scannet_resolution_frames, scannet_scene  # noqa: E402

SCANNET_SCANS = 1513
SCANNET_MEAN_FRAMES = 1650  # ScanNet v2: 2.5 M RGB-D frames in 1,513 scans
GPU_RULES = ("features_2d", "features_3d", "keyframe_masks", "track", "train", "predict")  # resources: gpu=1
# Stages whose cost grows with the frames they read, and the fraction of frames they read by default.
FRAME_STAGES = {"ingest": 1.0, "features_2d": None, "keyframe_masks": 1.0, "track": 1.0, "lift": 1.0}
# Artifacts that grow with the number of frames (their per-frame growth comes from scaling.py).
FRAME_ARTIFACTS = {"masks2d.h5": "masks2d.h5", "tracks.h5": "tracks.h5", "lifted.h5": "lifted.h5",
                   "features_2d.h5": "features_2d.h5", "scene.h5": "scene.h5"}
PER_SCAN_GROUPS = {  # profiles/slurm's groups
    "prep": ("synth_scene", "fuse_mesh", "ingest", "superpoints", "box_partition"),
    "masks": ("features_2d", "features_3d", "keyframe_masks", "track", "ncut", "lift"),
    "labels": ("predict", "evaluate", "pictures", "export"),
}


# Snakemake samples a job's processes every second for 30 s, then every 30 s, so a job's last seconds
# of CPU time can go uncounted; this runs it sampling every second throughout.
SNAKEMAKE_SAMPLING_EVERY_SECOND = (
    "import sys; import snakemake.benchmark as b; b.benchmarked.__defaults__ = (None, None, 1); "
    "from snakemake.cli import main; sys.argv = ['snakemake', *sys.argv[1:]]; sys.exit(main())")


def run_dag(scene: Path, work: Path, cores: int) -> None:
    (work / "scan.yaml").write_text(yaml.safe_dump({"scenes": {scene.name: str(scene)}, "results_dir": "results"}))
    proc = subprocess.run([sys.executable, "-c", SNAKEMAKE_SAMPLING_EVERY_SECOND, "--snakefile", str(REPO / "Snakefile"), "--cores", str(cores),
                           "--resources", "gpu=1", "--configfile", "scan.yaml"], cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{(proc.stdout + proc.stderr)[-5000:]}")


def benchmark_rows(results: Path, scene: str) -> dict[str, dict]:
    """rule -> {wall_s, cpu_s, peak_mib} from the scan's (and training's) benchmark files."""
    rows = {}
    for path in [*sorted((results / scene / "benchmarks").glob("*.tsv")), results / "_training" / "benchmarks" / "train.tsv"]:
        if not path.is_file():
            continue
        with path.open() as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        rows[path.stem] = {"wall_s": float(row["s"]), "cpu_s": float(row["cpu_time"]), "peak_mib": float(row["max_rss"])}
    return rows


def process_rows(results: Path, scene: Path) -> dict[str, dict]:
    """Every per-scan rule run again as its own `python -m pipeline` process on the DAG's inputs and
    config (CPU seconds and peak RSS from the kernel, exact; three rules have no benchmark file)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    r = {name: str(results / scene.name / f"{name}.h5") for name in
         ("scene", "superpoints", "features_2d", "features_3d", "masks2d", "tracks", "ncut", "lifted", "pseudo_labels")}
    out = results / "_remeasured"
    out.mkdir()
    o = {name: str(out / f"{name}.h5") for name in r}

    def params(stage):
        return ["--params", json.dumps(config.get(stage, {}))]

    lift_help = subprocess.run([sys.executable, "-m", "pipeline", "lift", "--help"], capture_output=True, text=True, cwd=REPO)
    raw_masks = ["--masks2d", r["masks2d"]] if "--masks2d" in lift_help.stdout else []
    scene_dir = ["--scene-dir", str(scene)]
    commands = {
        "ingest": ["ingest", str(scene), "--out", o["scene"]],
        "superpoints": ["superpoints", r["scene"], "--out", o["superpoints"]],
        "features_2d": ["features_2d", r["scene"], r["superpoints"], "--out", o["features_2d"], *params("features_2d")],
        "features_3d": ["features_3d", r["scene"], r["superpoints"], "--out", o["features_3d"], *params("features_3d")],
        "ncut": ["ncut", r["superpoints"], r["features_2d"], r["features_3d"], "--out", o["ncut"], *params("ncut")],
        "keyframe_masks": ["keyframe_masks", r["scene"], "--out", o["masks2d"], *params("keyframe_masks"), *scene_dir],
        "track": ["track", r["scene"], r["masks2d"], "--out", o["tracks"], *params("track"), *scene_dir],
        "lift": ["lift", r["scene"], r["superpoints"], r["tracks"], *raw_masks, "--out", o["lifted"], *params("lift"),
                 *scene_dir],
        "predict": ["predict", "--model", str(results / "_training" / "model.pt"), "--scene-dir",
                    str(results / scene.name), "--out", o["pseudo_labels"], *params("predict")],
        "pictures": ["pictures", r["scene"], "--out", str(out / "pictures"), "--superpoints", r["superpoints"],
                     "--labels", *(f"{name}={r[name]}" for name in ("ncut", "lifted", "pseudo_labels")),
                     "--tracks", r["tracks"], "--views", str(config.get("pictures", {}).get("views", 3))],
        "export": ["export", r["scene"], r["superpoints"], r["pseudo_labels"], "--out", str(out / "export")],
    }
    rows = {}
    for rule, command in commands.items():
        seconds, rss, cpu = measure(command)
        rows[rule] = {"wall_s": seconds, "cpu_s": cpu, "peak_mib": rss}
    return rows


def artifact_sizes(results: Path, scene: str) -> dict[str, float]:
    """MiB of every file the scan's rules wrote (logs and benchmarks included), by name under results/<scan>/."""
    folder = results / scene
    return {str(path.relative_to(folder)): path.stat().st_size / 2**20 for path in sorted(folder.rglob("*"))
            if path.is_file()}


def frame_slopes(scaling: dict) -> tuple[dict[str, float], dict[str, float], int]:
    """CPU seconds per frame of each stage and MiB per frame of each artifact (first -> last frame count)."""
    frames = scaling["data"]["frames"]
    first, last = frames[0], frames[-1]
    cpu = {}
    for stage, rows in scaling["data"]["stages"].items():
        by_n = {row["frames"]: row for row in rows}
        if first in by_n and last in by_n and "cpu_seconds" in by_n[first]:
            cpu[stage] = (by_n[last]["cpu_seconds"] - by_n[first]["cpu_seconds"]) / (last - first)
    sizes = scaling["data"].get("artifact_mib", {})
    disk = {}
    if str(first) in sizes and str(last) in sizes:
        for name in sizes[str(last)]:
            if name in sizes[str(first)]:
                disk[name] = max(0.0, (sizes[str(last)][name] - sizes[str(first)][name]) / (last - first))
    return cpu, disk, last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=250, help="frames of the measured scan (default 250)")
    parser.add_argument("--scaling", type=Path, help="JSON of `benchmarks/scaling.py --scannet` (per-frame costs)")
    parser.add_argument("--scan-frames", type=int, default=SCANNET_MEAN_FRAMES, help="frames of the mean scan")
    parser.add_argument("--scans", type=int, default=SCANNET_SCANS, help="scans in the dataset")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores for the DAG run")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "redkitchen")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--measured", type=Path,
                        help="JSON of an earlier run of this script: reuse its DAG measurement (only extrapolate)")
    parser.add_argument("--quick", action="store_true", help="a 30-frame scan")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames = 30
    if not args.data.is_dir():
        print(f"reference data not found at {args.data}", file=sys.stderr)
        return 2
    scaling = json.loads(args.scaling.read_text()) if args.scaling else None
    if args.measured:
        measured_record = json.loads(args.measured.read_text())
        measured = measured_record["data"]
        args.frames, rules, disk = measured["frames"], measured["rules"], measured["disk_mib"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            frames_root = scannet_resolution_frames(args.data, root / "frames")
            scene = scannet_scene(args.data, frames_root, args.frames, root / "scenes")
            work = root / "work"
            work.mkdir()
            run_dag(scene, work, args.cores)
            results = work / "results"
            disk = artifact_sizes(results, scene.name)
            sampled = benchmark_rows(results, scene.name)
            rules = process_rows(results, scene)
            rules["train"] = sampled["train"]  # once for all scans, not per scan: as Snakemake measured it
            for rule, row in sampled.items():
                if rule in rules:
                    rules[rule]["snakemake_cpu_s"] = row["cpu_s"]
    slopes, disk_slopes, scaling_frames = frame_slopes(scaling) if scaling else ({}, {}, None)
    extra = args.scan_frames - args.frames
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    print(f"one scan at ScanNet resolution, {args.frames} frames (measured), and the mean ScanNet scan, "
          f"{args.scan_frames} frames ({'extrapolated with the CPU s per frame of scaling.py' if scaling else 'no --scaling: not extrapolated'})")
    print(f"\n{'rule':16s} {'GPU rule':>8s} {'wall s':>8s} {'CPU s':>8s} {'(Snakemake)':>11s} {'peak MiB':>9s} "
          f"{'CPU s/frame':>12s} {'CPU s, ' + str(args.scan_frames) + ' frames':>20s}")
    per_scan, applied = {}, {}
    for rule in sorted(rules, key=lambda r: (r == "train", r)):
        row = rules[rule]
        slope = 0.0
        if rule in FRAME_STAGES and rule in slopes:
            fraction = FRAME_STAGES[rule]
            if rule == "features_2d":  # measured on every frame; the default reads every frame_step-th
                fraction = 1.0 / config["features_2d"]["frame_step"]
            slope = slopes[rule] * fraction
            applied[rule] = slope
        scan_cpu = row["cpu_s"] + slope * extra if scaling else row["cpu_s"]
        if rule != "train":
            per_scan[rule] = scan_cpu
        snakemake_cpu = f"{row['snakemake_cpu_s']:11.1f}" if "snakemake_cpu_s" in row else f"{'':11s}"
        print(f"{rule:16s} {'yes' if rule in GPU_RULES else '':>8s} {row['wall_s']:8.1f} {row['cpu_s']:8.1f} "
              f"{snakemake_cpu} {row['peak_mib']:9.0f} {slope:12.4f} {scan_cpu:20.1f}"
              + ("   (once for all scans)" if rule == "train" else ""))
    artifacts = {name: mib for name, mib in disk.items() if name.endswith((".h5", ".ply", ".png", ".txt", ".pth", ".npy",
                                                                             ".pkl", ".tsv", ".json", ".log"))}
    total_disk = sum(artifacts.values())
    grown = 0.0
    if scaling:
        for name, per_frame in disk_slopes.items():
            if name in FRAME_ARTIFACTS:
                grown += per_frame * extra
    scan_disk = total_disk + grown
    print(f"\ndisk of one scan, {args.frames} frames: {total_disk:.1f} MiB; the largest: "
          + ", ".join(f"{name} {mib:.1f}" for name, mib in sorted(artifacts.items(), key=lambda kv: -kv[1])[:6]))
    if scaling:
        print(f"disk per frame (scaling.py, {scaling['data']['frames'][0]}->{scaling_frames} frames): "
              + ", ".join(f"{name} {1024 * mib:.1f} KiB" for name, mib in disk_slopes.items() if name in FRAME_ARTIFACTS)
              + f" -> {scan_disk:.1f} MiB for {args.scan_frames} frames")
    gpu_cpu = sum(s for rule, s in per_scan.items() if rule in GPU_RULES)
    cpu_cpu = sum(s for rule, s in per_scan.items() if rule not in GPU_RULES)
    groups = {group: sum(per_scan.get(rule, 0.0) for rule in members) for group, members in PER_SCAN_GROUPS.items()}
    print(f"\nper scan ({args.scan_frames} frames): {cpu_cpu + gpu_cpu:.0f} CPU s = {(cpu_cpu + gpu_cpu) / 60:.1f} CPU min "
          f"(GPU rules on CPUs {gpu_cpu:.0f} s, CPU rules {cpu_cpu:.0f} s); by group: "
          + ", ".join(f"{group} {s:.0f} s" for group, s in groups.items()))
    hours = (cpu_cpu + gpu_cpu) * args.scans / 3600
    print(f"{args.scans} scans: {hours:.0f} core-hours (GPU rules {gpu_cpu * args.scans / 3600:.0f}, CPU rules "
          f"{cpu_cpu * args.scans / 3600:.0f}) with the weight-free backends; disk {scan_disk * args.scans / 1024:.0f} GiB; "
          f"train once: {rules.get('train', {}).get('cpu_s', float('nan')):.0f} CPU s (demo preset, this scan)")
    print("GPU time with SAM / SAM 2 / DINO / CSC: not measured (no GPU on this machine)")
    write_result(args.json, "capacity", {
        "frames": args.frames, "scan_frames": args.scan_frames, "scans": args.scans, "rules": rules,
        "cpu_s_per_frame": slopes, "per_scan_cpu_s": per_scan, "groups_cpu_s": groups, "disk_mib": artifacts,
        "disk_mib_per_frame": disk_slopes, "scan_disk_mib": scan_disk, "core_hours": hours,
        "gpu_rules_core_hours": gpu_cpu * args.scans / 3600, "cpu_rules_core_hours": cpu_cpu * args.scans / 3600,
        "cpu_s_per_frame_applied": applied, "gpu_rules": list(GPU_RULES), "groups": PER_SCAN_GROUPS,
        "slurm_jobs": yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text()).get("jobs"),
        "frame_artifacts": sorted(FRAME_ARTIFACTS),
        "scaling": {key: scaling[key] for key in ("date", "command", "machine")} | {
            "earlier": scaling["data"].get("earlier", {})} if scaling else None,
        "measured": ({"date": measured_record["date"], "command": measured_record["command"],
                      "machine": measured_record["machine"]} if args.measured else None)},
        args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
