"""The unsupervised curriculum's options, scored on generated rooms (class-agnostic AP / AP50 / AP25).

Stage 1 (single_view): raw_views (each keyframe's own 2D masks) | lifted_views (tracked masks per view);
stage 2 (multi_view): lifted|ncut (NCut only where a scene has no lifted masks) | lifted+ncut (both,
NCut duplicates of lifted masks dropped) | ncut+lifted (both, lifted duplicates of NCut masks dropped)
| ncut|lifted (lifted only where a scene has no NCut masks); stage 3 (full_scene): predicted (confident predictions
alone) | added (the stage-2 targets plus the confident predictions they do not cover). The demo
preset's phase lengths (40 / 200 / 100 steps). Branches share their prefix: every stage-2 option
starts from the same stage-1 model, every stage-3 option from the same stage-2 model.

After each phase two things are scored against the rooms' ground truth: the student alone
(``predict_unsupervised`` without input masks) and the final labels as ``predict`` makes them
(the masks of the last phase with file targets kept, the model's novel masks added). The input
masks alone are scored too. Numbers are the mean over the rooms.

    # the rooms' artifacts up to lift and ncut (about a minute on 2 cores):
    snakemake --cores 1 --configfile configs/unsupervised.yaml --config results_dir=/tmp/curr/results \\
        --until lift ncut
    python benchmarks/curriculum.py --results /tmp/curr/results [--seeds 0 1] [--json out.json]
    python benchmarks/curriculum.py --results /tmp/curr/results --stage2 ncut+lifted --train '{"unsupervised": ...}'
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

STAGE1 = {"raw_views": ["raw_views"], "lifted_views": ["lifted_views"]}
STAGE2 = {"lifted|ncut": ["lifted|ncut"], "lifted+ncut": ["lifted", "ncut"], "ncut+lifted": ["ncut", "lifted"],
          "ncut|lifted": ["ncut|lifted"]}
STAGE3 = {"predicted": lambda files: ["predicted"], "added": lambda files: files + ["predicted"]}


def score(scene_h5, point_instance, instance_score) -> dict:
    from pipeline.commands.evaluate import Predictions, score_predictions

    metrics = score_predictions(scene_h5, Predictions("pseudo_labels", point_instance, instance_score, None))
    return {k: metrics[k] for k in ("ap", "ap50", "ap25")}


def mean(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def input_scores(scenes, inputs, config) -> dict:
    """The file masks alone, ranked by their own scores, as point labels."""
    from pipeline.learning.predict import masks_to_point_labels
    from pipeline.learning.train.selftrain import file_targets

    out = {}
    for name, targets in {"lifted": ["lifted"], "ncut": ["ncut"], **STAGE2}.items():
        rows = []
        for scene, item in zip(scenes, inputs):
            masks, scores = file_targets(scene.sources, targets, scene.sp_size, config.unsupervised.duplicate_iou,
                                         scene.source_scores)
            labels, kept = masks_to_point_labels(masks > 0.5, scores, scene.point_superpoint, 30)
            rows.append(score(item.scene, labels, kept))
        out[name] = mean(rows)
    return out


def evaluate(trainer, scenes, inputs, phases_done) -> dict:
    """Student alone and final labels after the phases done so far."""
    from pipeline.commands.predict import training_masks
    from pipeline.learning.predict import predict_unsupervised

    config = replace(trainer.config, phases=tuple(phases_done))
    student, final = [], []
    for scene, item in zip(scenes, inputs):
        alone = predict_unsupervised(trainer.student, scene, {}, trainer.device)
        student.append(score(item.scene, alone.point_instance, alone.instance_score))
        labels = predict_unsupervised(trainer.student, scene, {}, trainer.device, training_masks(scene, config))
        final.append(score(item.scene, labels.point_instance, labels.instance_score))
    return {"student": mean(student), "final": mean(final)}


def params_for(s1: str, s2: str, s3: str, seed: int, train: dict | None = None) -> dict:
    """Train parameters of one branch; ``train`` (--train) overrides the rest of the train section,
    its ``unsupervised`` keys beside the branch's curriculum (phases with LESS losses, say)."""
    files = STAGE2[s2]
    train = copy.deepcopy(train or {})
    unsupervised = {**train.pop("unsupervised", {}),
                    "curriculum": {"single_view": STAGE1[s1], "multi_view": files, "full_scene": STAGE3[s3](files)}}
    return {"mode": "unsupervised", "preset": "demo", "seed": seed, "log_every": 0, "checkpoint_every": 0,
            **train, "unsupervised": unsupervised}


def run(results: Path, seeds: list[int], stage1=tuple(STAGE1), stage2=tuple(STAGE2), stage3=tuple(STAGE3),
        train: dict | None = None) -> dict:
    from pipeline.commands.train import scene_inputs_from_dir
    from pipeline.learning.train.config import merged_params, resolve
    from pipeline.learning.train.data import load_scene
    from pipeline.learning.train.loop import Trainer

    inputs = [scene_inputs_from_dir(d) for d in sorted(results.iterdir()) if (d / "lifted.h5").is_file()]
    scenes = [load_scene(item, None, want_boxes=False) for item in inputs]
    print("scenes:", [s.name for s in scenes], "raw view masks:", [len(np.unique(s.raw_views.instance)) for s in scenes],
          "tracked view masks:", [len(np.unique(s.views.instance)) for s in scenes], flush=True)
    data = {"scenes": [s.name for s in scenes], "inputs": input_scores(scenes, inputs, resolve(params_for(
        "raw_views", "lifted|ncut", "predicted", 0))), "runs": []}
    print("inputs alone:", json.dumps(data["inputs"]), flush=True)

    def trainer_for(s1, s2, s3, seed, state=None):
        params = params_for(s1, s2, s3, seed, train)
        trainer = Trainer(scenes, resolve(params), "unsupervised", ["object"], merged_params(params))
        if state is not None:
            trainer.load_state_dict(copy.deepcopy(state))
        return trainer

    def advance(trainer, name):
        started = time.monotonic()
        phase = trainer.phases[trainer.phase_index]
        trainer.run(stop_after=phase.steps(0))  # demo phases have fixed iterations
        result = evaluate(trainer, scenes, inputs, trainer.phases[: trainer.phase_index])
        record = {"variant": name, "phase": phase.name, "steps": trainer.step,
                  "seconds": round(time.monotonic() - started, 1), **result}
        data["runs"].append(record)
        print(json.dumps(record), flush=True)
        return copy.deepcopy(trainer.state_dict())

    for seed in seeds:
        for s1 in stage1:
            after1 = advance(trainer_for(s1, "lifted|ncut", "predicted", seed), f"seed{seed} {s1}")
            for s2 in stage2:
                after2 = advance(trainer_for(s1, s2, "predicted", seed, after1), f"seed{seed} {s1} > {s2}")
                for s3 in stage3:
                    advance(trainer_for(s1, s2, s3, seed, after2), f"seed{seed} {s1} > {s2} > {s3}")
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True, help="results folder with <scene>/lifted.h5, ncut.h5")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--stage1", nargs="+", choices=list(STAGE1), default=list(STAGE1))
    parser.add_argument("--stage2", nargs="+", choices=list(STAGE2), default=list(STAGE2))
    parser.add_argument("--stage3", nargs="+", choices=list(STAGE3), default=list(STAGE3))
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--train", default="{}", help="JSON overrides of the train section (as in config.yaml), "
                                                      "e.g. phases with LESS losses")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = run(args.results, args.seeds, args.stage1, args.stage2, args.stage3, json.loads(args.train))
    if args.json:
        from bench_results import write_result

        write_result(args.json, "curriculum", data, quick=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
