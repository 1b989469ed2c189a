"""Overlap-region assignment and final pseudo-label AP on synthetic rooms (measured, not asserted).

Box mode: every seed's room goes through the real stages (synth -> ingest -> superpoints ->
box_partition), a demo-preset BEEP3D model is trained on each group of rooms (as the demo DAG
trains on its two rooms) and predicts their pseudo-labels. On the points inside two or more
boxes it prints the assignment accuracy (points, and mean over GT boxes) of the EMA teacher next
to the smallest-box rule (Box2Mask's heuristic) on the same points, and the class-agnostic
AP / AP50 / AP25 of the final pseudo-labels next to the masks they started from (the raw boxes,
and the smallest-box labels).

    python benchmarks/overlap_assignment.py --seeds 0 1 2 3      # the demo preset's steps, as the DAG
    python benchmarks/overlap_assignment.py --results results   # score an existing DAG run (either mode)

With --results it scores every results/<scene>/pseudo_labels.h5 against the scene's ground
truth, next to whichever starting masks exist there (boxes.h5, ncut.h5, lifted.h5).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_results import write_result  # noqa: E402

from pipeline.io.artifacts import read_artifact  # noqa: E402
from pipeline.learning.boxes import AMBIGUOUS, partition_points  # noqa: E402
from pipeline.outputs.evaluate import (  # noqa: E402
    gt_box_per_point,
    instance_ap,
    instance_ap_from_labels,
    overlap_assignment_accuracy,
)


def prepare_scene(seed: int, work: Path) -> Path:
    """results-style folder of one synthetic room (frames are not needed in box mode: keep 2 small ones)."""
    from pipeline.commands.box_partition import run_box_partition
    from pipeline.commands.ingest import run_ingest
    from pipeline.commands.superpoints import run_superpoints
    from pipeline.commands.synth import run_synth

    source = work / "synthetic" / f"room{seed}"
    results = work / "results" / f"room{seed}"
    if not (results / "boxes.h5").is_file():
        run_synth(source, {"seed": seed, "frames": 2, "width": 64, "height": 48})
        run_ingest(source, results / "scene.h5", {"verify_images": "first"})
        run_superpoints(results / "scene.h5", results / "superpoints.h5")
        run_box_partition(results / "scene.h5", results / "boxes.h5")
    return results


def score_box_mode(folder: Path) -> dict:
    scene = read_artifact(folder / "scene.h5", "scene", required=["gt/instance", "boxes/instance"])
    boxes = read_artifact(folder / "boxes.h5", "boxes", required=["point_box", "smallest_box"])
    labels = read_artifact(folder / "pseudo_labels.h5", "pseudo_labels", required=["point_box"])
    gt_instance, gt_labels = scene["gt/instance"], scene["gt/instance_label"]
    gt_box = gt_box_per_point(gt_instance, scene["boxes/instance"])
    overlap = boxes["point_box"] == AMBIGUOUS
    teacher = overlap_assignment_accuracy(labels["point_box"], gt_box, overlap)
    smallest = overlap_assignment_accuracy(boxes["smallest_box"], gt_box, overlap)
    member = partition_points(scene["vertices"], boxes["box/min"], boxes["box/max"]).membership(len(boxes["box/min"]))
    return {
        "overlap_points": teacher.n_points,
        "teacher_point_acc": teacher.point_accuracy, "teacher_instance_acc": teacher.mean_instance_accuracy,
        "smallest_point_acc": smallest.point_accuracy, "smallest_instance_acc": smallest.mean_instance_accuracy,
        "ap_final": instance_ap_from_labels(gt_instance, gt_labels, labels["point_instance"], labels["instance_score"]),
        "ap_boxes": instance_ap(gt_instance, gt_labels, member.T),
        "ap_smallest": instance_ap_from_labels(gt_instance, gt_labels, boxes["smallest_box"]),
        "rescued": json.loads(labels.attrs.get("rescued_boxes", "[]")) if isinstance(labels.attrs.get("rescued_boxes"), str)
        else list(labels.attrs.get("rescued_boxes", [])),
    }


def _ap_text(ap) -> str:
    return f"{ap.ap:.3f} / {ap.ap50:.3f} / {ap.ap25:.3f}"


def run_box_benchmark(args) -> None:
    from pipeline.commands.predict import run_predict
    from pipeline.commands.train import run_train, scene_inputs_from_dir

    work = Path(args.work)
    params = {"preset": "demo", "log_every": 0, **json.loads(args.params or "{}")}
    if args.iterations is not None:
        params["iterations"] = args.iterations
    rows = []
    started = time.monotonic()
    seeds = list(args.seeds)
    for start in range(0, len(seeds), args.scenes_per_model):
        group = seeds[start : start + args.scenes_per_model]
        folders = [prepare_scene(seed, work) for seed in group]
        inputs = [scene_inputs_from_dir(f) for f in folders]
        model = work / "models" / ("rooms_" + "_".join(map(str, group)) + ".pt")
        t = time.monotonic()
        run_train(inputs, model, params, resume=False)
        train_seconds = time.monotonic() - t
        for folder, item in zip(folders, inputs):
            run_predict(model, item, folder / "pseudo_labels.h5")
            row = score_box_mode(folder)
            row.update(scene=folder.name, train_seconds=train_seconds)
            rows.append(row)
    print(f"box mode, demo preset, {args.iterations or 'preset'} iterations per model of {args.scenes_per_model} rooms, "
          f"params {json.dumps(params)}")
    print(f"{'scene':8} {'overlap pts':>11} | {'teacher pt':>10} {'inst':>6} | {'smallest pt':>11} {'inst':>6} | "
          f"{'AP/AP50/AP25 final':>22} | {'boxes':>22} | {'smallest-box':>22}")
    for r in rows:
        print(f"{r['scene']:8} {r['overlap_points']:>11} | {r['teacher_point_acc']:>10.3f} {r['teacher_instance_acc']:>6.3f} | "
              f"{r['smallest_point_acc']:>11.3f} {r['smallest_instance_acc']:>6.3f} | {_ap_text(r['ap_final']):>22} | "
              f"{_ap_text(r['ap_boxes']):>22} | {_ap_text(r['ap_smallest']):>22}   rescued {r['rescued']}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in
            ("teacher_point_acc", "teacher_instance_acc", "smallest_point_acc", "smallest_instance_acc")}
    ap_mean = {k: tuple(float(np.mean([getattr(r[k], m) for r in rows])) for m in ("ap", "ap50", "ap25"))
               for k in ("ap_final", "ap_boxes", "ap_smallest")}
    print(f"{'mean':8} {'':>11} | {mean['teacher_point_acc']:>10.3f} {mean['teacher_instance_acc']:>6.3f} | "
          f"{mean['smallest_point_acc']:>11.3f} {mean['smallest_instance_acc']:>6.3f} | "
          + " | ".join(f"{'%.3f / %.3f / %.3f' % ap_mean[k]:>22}" for k in ("ap_final", "ap_boxes", "ap_smallest")))
    wins = sum(r["teacher_point_acc"] > r["smallest_point_acc"] for r in rows)
    print(f"teacher beats the smallest-box rule (point accuracy) in {wins}/{len(rows)} scenes; "
          f"total {time.monotonic() - started:.0f} s")
    aps = ("ap_final", "ap_boxes", "ap_smallest")
    write_result(args.json, "overlap_assignment", {
        "iterations": args.iterations, "scenes_per_model": args.scenes_per_model, "params": params,
        "rows": [{**{k: v for k, v in r.items() if k not in aps},
                  **{k: {m: float(getattr(r[k], m)) for m in ("ap", "ap50", "ap25")} for k in aps}} for r in rows],
        "mean": mean, "ap_mean": {k: dict(zip(("ap", "ap50", "ap25"), ap_mean[k])) for k in aps},
        "teacher_wins": int(wins), "seconds": time.monotonic() - started}, args.quick)


def _labels_ap(gt_instance, gt_labels, path: Path, stage: str):
    art = read_artifact(path, stage, required=["point_instance"])
    return instance_ap_from_labels(gt_instance, gt_labels, art["point_instance"], art.get("instance_score"))


def run_results_benchmark(args) -> None:
    root = Path(args.results)
    print(f"{'scene':16} {'source':14} {'AP':>6} {'AP50':>6} {'AP25':>6}   extra")
    for folder in sorted(p for p in root.iterdir() if (p / "pseudo_labels.h5").is_file()):
        scene = read_artifact(folder / "scene.h5", "scene")
        if "gt/instance" not in scene:
            print(f"{folder.name:16} no ground truth")
            continue
        gt_instance, gt_labels = scene["gt/instance"], scene["gt/instance_label"]
        rows = [("pseudo_labels", _labels_ap(gt_instance, gt_labels, folder / "pseudo_labels.h5", "pseudo_labels"), "")]
        for name in ("ncut", "lifted"):
            if (folder / f"{name}.h5").is_file():
                rows.append((name, _labels_ap(gt_instance, gt_labels, folder / f"{name}.h5", name), ""))
        if (folder / "boxes.h5").is_file() and "point_box" in read_artifact(folder / "pseudo_labels.h5", "pseudo_labels"):
            r = score_box_mode(folder)
            rows.append(("boxes", r["ap_boxes"], ""))
            rows.append(("smallest_box", r["ap_smallest"], f"overlap acc {r['smallest_point_acc']:.3f} / {r['smallest_instance_acc']:.3f}"))
            rows[0] = ("pseudo_labels", rows[0][1], f"overlap acc {r['teacher_point_acc']:.3f} / {r['teacher_instance_acc']:.3f}")
        for name, ap, extra in rows:
            print(f"{folder.name:16} {name:14} {ap.ap:6.3f} {ap.ap50:6.3f} {ap.ap25:6.3f}   {extra}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--iterations", type=int, help="training steps per model (default: the demo preset's, as the DAG)")
    parser.add_argument("--scenes-per-model", type=int, default=2)
    parser.add_argument("--params", help="JSON train overrides, e.g. '{\"box\": {\"centre_similarity\": \"dot\"}}'")
    parser.add_argument("--work", default="/tmp/overlap_benchmark", help="scratch folder (scenes are reused)")
    parser.add_argument("--results", help="score an existing results folder instead")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here (box benchmark)")
    parser.add_argument("--quick", action="store_true", help="two rooms, one model, 20 iterations")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.iterations = args.seeds[:2], 20
    logging.basicConfig(level=logging.WARNING)
    if args.results:
        run_results_benchmark(args)
    else:
        run_box_benchmark(args)


if __name__ == "__main__":
    main()
