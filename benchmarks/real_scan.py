"""Real-scan quality: every stage's masks and the learning stage's final labels on labelled real scans.

The project's real-data quality measure. Each scene folder (ScanNet layout; by default the real
scan ``../shared/data/scene0000_00``: a point cloud with ``<scene>.txt`` ground truth and
``boxes.json``) goes through the same functions the DAG calls, with config.yaml's parameters:
ingest -> superpoints -> features_2d / features_3d -> ncut, and box_partition where it has boxes.
Then the learning stage runs in both modes, once per seed, on all given scenes together (as the
DAG's `train` rule does), and `predict` writes the final labels.

It prints one table of class-agnostic AP / AP50 / AP25 (the ScanNet benchmark's 18 classes when the
ground truth carries NYU40 ids) of:
- superpoints taken as instances, NCut's masks (UnScene3D's pseudo masks);
- box baselines: every point inside a box takes its smallest containing box (Box2Mask's rule);
- the final pseudo-labels of each mode (mean and spread over the seeds);
and, for box mode, the overlap-point accuracy: over ground-truth object points inside two or more
boxes, the share assigned to the box of their own instance. Unsupervised mode's AP is also printed
after each training phase (curriculum stages, self-training rounds).

    python benchmarks/real_scan.py                              # demo preset, seeds 0 1 2, both modes
    python benchmarks/real_scan.py --preset paper --seeds 0     # the paper's settings (GPU budget)
    python benchmarks/real_scan.py --scene /data/scannet/scans/scene0011_00 --scene ...
    python benchmarks/real_scan.py --modes box --train '{"box": {"queries": "fps"}}'

Ground truth is used for scoring only: ingest runs with config.yaml's `ingest` section, so boxes
come from boxes.json (never from ground truth unless `--oracle-boxes`).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.io.artifacts import read_artifact  # noqa: E402
from pipeline.commands.evaluate import Predictions, score_predictions  # noqa: E402
from pipeline.io.resume import without_run_settings  # noqa: E402

DEFAULT_SCENE = ROOT.parent / "shared" / "data" / "scene0000_00"
METRICS = ("ap", "ap50", "ap25")


def stage_params(config: dict, stage: str) -> dict:
    """A stage's config.yaml section as the DAG passes it (run settings left out)."""
    return without_run_settings(dict(config.get(stage) or {}))


def prepare_scene(scene_dir: Path, folder: Path, config: dict) -> dict:
    """Run the per-scene stages into ``folder`` (results/<scene> layout); returns their seconds."""
    from pipeline.commands.box_partition import run_box_partition
    from pipeline.commands.features_2d import run_features_2d
    from pipeline.commands.features_3d import run_features_3d
    from pipeline.commands.ingest import run_ingest
    from pipeline.commands.ncut import run_ncut
    from pipeline.commands.superpoints import run_superpoints

    folder.mkdir(parents=True, exist_ok=True)
    seconds = {}

    def timed(name, call):
        started = time.monotonic()
        call()
        seconds[name] = time.monotonic() - started

    timed("ingest", lambda: run_ingest(scene_dir, folder / "scene.h5", stage_params(config, "ingest")))
    timed("superpoints", lambda: run_superpoints(folder / "scene.h5", folder / "superpoints.h5",
                                                 stage_params(config, "superpoints")))
    timed("features_2d", lambda: run_features_2d(folder / "scene.h5", folder / "superpoints.h5",
                                                 folder / "features_2d.h5", stage_params(config, "features_2d")))
    timed("features_3d", lambda: run_features_3d(folder / "scene.h5", folder / "superpoints.h5",
                                                 folder / "features_3d.h5", stage_params(config, "features_3d")))
    timed("ncut", lambda: run_ncut(folder / "superpoints.h5", folder / "features_2d.h5", folder / "features_3d.h5",
                                   folder / "ncut.h5", stage_params(config, "ncut")))
    if "boxes/min" in read_artifact(folder / "scene.h5", "scene"):
        timed("box_partition", lambda: run_box_partition(folder / "scene.h5", folder / "boxes.h5",
                                                         stage_params(config, "box_partition")))
    return seconds


class Scorer:
    """Scores per-point labels of one scene with the evaluate stage's own function and settings."""

    def __init__(self, folder: Path, config: dict):
        self.scene_path = folder / "scene.h5"
        options = stage_params(config, "evaluate")
        self.options = {key: options[key] for key in ("min_region_size", "ignore_labels", "gt_classes") if key in options}
        if "ignore_labels" in self.options:
            self.options["ignore_labels"] = tuple(self.options["ignore_labels"])

    def __call__(self, stage: str, point_instance, instance_score=None, point_box=None) -> dict:
        predictions = Predictions(stage, np.asarray(point_instance, np.int64),
                                  None if instance_score is None else np.asarray(instance_score, np.float64),
                                  None if point_box is None else np.asarray(point_box, np.int64))
        return score_predictions(self.scene_path, predictions, **self.options)

    def artifact(self, path: Path, stage: str) -> dict:
        art = read_artifact(path, stage)
        return self(stage, art["point_instance"], art.get("instance_score"), art.get("point_box"))


def input_rows(folder: Path, score: Scorer) -> dict[str, dict]:
    """Metrics of what the learning stage starts from, and of the trivial box labels."""
    rows = {}
    superpoints = read_artifact(folder / "superpoints.h5", "superpoints", required=["point_superpoint"])
    rows["superpoints as instances"] = score("superpoints", superpoints["point_superpoint"])
    rows["NCut masks"] = score.artifact(folder / "ncut.h5", "ncut")
    if (folder / "boxes.h5").is_file():
        boxes = read_artifact(folder / "boxes.h5", "boxes", required=["smallest_box"])
        smallest = boxes["smallest_box"].astype(np.int64)
        rows["box rule: smallest containing box"] = score("smallest_box", smallest, None, smallest)
        if "surface_background" in boxes:
            cleaned = np.where(boxes["surface_background"].astype(bool), -1, smallest)
            rows["box rule less the surface background"] = score("smallest_box", cleaned, None, smallest)
    return rows


def reusable_model(path: Path, params: dict) -> bool:
    """A finished model at ``path`` trained with these train parameters (``--reuse-models``)."""
    from pipeline.learning.train.config import resolve
    from pipeline.learning.train.loop import load_checkpoint_file

    if not path.is_file():
        return False
    state = load_checkpoint_file(path)
    return bool(state.get("complete")) and resolve(json.loads(state["params"])) == resolve(params)


def train_and_predict(inputs: list, folders: list[Path], mode: str, seed: int, train_params: dict,
                      predict_params: dict, work: Path, scorers: list[Scorer], phase_rows: dict,
                      reuse: bool = False) -> list[dict]:
    """One training run (all scenes) and its final labels' metrics per scene; unsupervised runs
    also score the student after every phase into ``phase_rows[(scene, phase)]``. With ``reuse`` a
    finished model of the same settings in ``work`` is scored again instead of retrained."""
    from pipeline.commands.predict import run_predict, training_masks
    from pipeline.commands.train import run_train
    from pipeline.learning.predict import predict_unsupervised

    def after_phase(trainer, phase):
        if mode != "unsupervised":
            return
        for scene, score in zip(trainer.scenes, scorers):
            # the student alone, then as `predict` combines it with the masks it trained from
            for how, inputs in (("student", None), ("labels", training_masks(scene, trainer.config))):
                labels = predict_unsupervised(trainer.student, scene, predict_params, trainer.device, inputs)
                metrics = score("pseudo_labels", labels.point_instance, labels.instance_score)
                phase_rows.setdefault((scene.name, phase.name, how), []).append(metrics)

    model = work / "_training" / f"{mode}_seed{seed}.pt"
    params = {**train_params, "mode": mode, "seed": seed}
    started = time.monotonic()
    if reuse and reusable_model(model, params):
        print(f"  reusing {model} (same train settings)", flush=True)
        train_seconds = None
    else:
        run_train(inputs, model, params, resume=False, on_phase_end=after_phase)
        train_seconds = time.monotonic() - started
    results = []
    for item, folder, score in zip(inputs, folders, scorers):
        out = folder / f"pseudo_labels_{mode}_seed{seed}.h5"
        run_predict(model, item, out, predict_params)
        metrics = score.artifact(out, "pseudo_labels")
        metrics["train_seconds"] = train_seconds
        results.append(metrics)
    return results


def mean_spread(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def overlap_accuracy(metrics: dict) -> float | None:
    overlap = metrics.get("overlap") or {}
    return overlap.get("object_point_accuracy")


def format_table(scene: str, rows: dict[str, list[dict]]) -> str:
    lines = [f"### {scene}", "", "| labels | AP | AP50 | AP25 | overlap-point accuracy | runs |", "|---|---|---|---|---|---|"]
    for name, runs in rows.items():
        cells = [mean_spread([run[key] for run in runs]) for key in METRICS]
        lines.append(f"| {name} | {' | '.join(cells)} | {mean_spread([overlap_accuracy(r) for r in runs])} | {len(runs)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", action="append", type=Path, help="scene folder with ground truth (repeat)")
    parser.add_argument("--preset", default="demo", choices=["demo", "paper"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--modes", nargs="+", default=["box", "unsupervised"], choices=["box", "unsupervised"])
    parser.add_argument("--train", default="{}", help="JSON overrides of the train section (as in config.yaml)")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="configuration (default: config.yaml)")
    parser.add_argument("--oracle-boxes", action="store_true", help="ingest.boxes_from_ground_truth (oracle boxes)")
    parser.add_argument("--work", type=Path, help="folder for the artifacts (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write every number as JSON here")
    parser.add_argument("--reuse-models", action="store_true",
                        help="score finished models already in --work that have the same train settings instead of "
                             "retraining them (after a change to predict or the per-scene stages)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    scene_dirs = args.scene or [DEFAULT_SCENE]
    missing = [d for d in scene_dirs if not d.is_dir()]
    if missing:
        parser.error(f"scene folder(s) not found: {', '.join(map(str, missing))} (the default needs ../shared/data)")
    config = yaml.safe_load(args.config.read_text())
    if args.oracle_boxes:
        config.setdefault("ingest", {})["boxes_from_ground_truth"] = True
    work = args.work or Path(tempfile.mkdtemp(prefix="real_scan_"))
    train_params = {**stage_params(config, "train"), "preset": args.preset, **json.loads(args.train)}
    predict_params = stage_params(config, "predict")
    started = time.monotonic()

    from pipeline.commands.train import scene_inputs_from_dir

    folders = [work / d.name for d in scene_dirs]
    stage_seconds = {}
    for scene_dir, folder in zip(scene_dirs, folders):
        print(f"{scene_dir.name}: preparing (ingest, superpoints, features, ncut, box_partition) ...", flush=True)
        stage_seconds[scene_dir.name] = prepare_scene(scene_dir, folder, config)
    scorers = [Scorer(folder, config) for folder in folders]
    rows: dict[str, dict[str, list[dict]]] = {
        folder.name: {name: [metrics] for name, metrics in input_rows(folder, score).items()}
        for folder, score in zip(folders, scorers)
    }
    phase_rows: dict = {}
    mode_seconds = {}
    for mode in args.modes:
        inputs = [scene_inputs_from_dir(folder) for folder in folders]
        if mode == "box" and any(item.boxes is None for item in inputs):
            print("box mode skipped: a scene has no boxes", flush=True)
            continue
        if mode == "unsupervised":
            inputs = [type(item)(item.name, item.scene, item.superpoints, None, item.ncut, item.lifted) for item in inputs]
        times = []
        for seed in args.seeds:
            print(f"{mode} mode, seed {seed}: training on {len(inputs)} scene(s) ...", flush=True)
            results = train_and_predict(inputs, folders, mode, seed, train_params, predict_params, work, scorers,
                                        phase_rows, args.reuse_models)
            if results[0]["train_seconds"] is not None:
                times.append(results[0]["train_seconds"])
            for folder, metrics in zip(folders, results):
                rows[folder.name].setdefault(f"final pseudo-labels, {mode} mode", []).append(metrics)
        mode_seconds[mode] = times

    convention = next(iter(next(iter(rows.values())).values()))[0].get("gt_classes")
    print(f"\nReal-scan quality, {date.today().isoformat()}, {platform.node()} ({platform.processor() or platform.machine()}), "
          f"preset {args.preset}, seeds {args.seeds}, ground truth classes: {convention}\n")
    for scene, scene_rows in rows.items():
        print(format_table(scene, scene_rows))
        print()
    if phase_rows:
        print("Unsupervised mode after each training phase, full scene: the student alone, and the labels "
              "`predict` makes from it (with the input masks, predict.keep_inputs):\n")
        print("| scene | phase | scored | AP | AP50 | AP25 |\n|---|---|---|---|---|---|")
        for (scene, phase, how), runs in phase_rows.items():
            print(f"| {scene} | {phase} | {how} | " + " | ".join(mean_spread([r[k] for r in runs]) for k in METRICS)
                  + " |")
        print()
    for mode, times in mode_seconds.items():
        if not times:
            print(f"{mode} mode: every model reused, no training time measured")
            continue
        print(f"{mode} mode: training {statistics.mean(times) / 60:.1f} min per seed on {len(folders)} scene(s)")
    print(f"total {(time.monotonic() - started) / 60:.1f} min; artifacts in {work}")
    if args.json:
        payload = {"date": date.today().isoformat(), "preset": args.preset, "seeds": args.seeds, "gt_classes": convention,
                   "rows": rows, "phases": {"/".join(key): r for key, r in phase_rows.items()},
                   "train_seconds": mode_seconds, "stage_seconds": stage_seconds}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
