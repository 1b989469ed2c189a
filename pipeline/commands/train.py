"""`python -m pipeline train --scene-dir results/A --scene-dir results/B --out model.pt`

Trains one model on all scenes. Box mode (BEEP3D) needs each scene's boxes.h5; unsupervised mode
(UnScene3D + curriculum) uses ncut.h5 and/or lifted.h5. While training, a resumable checkpoint
``<out>.last`` is written every ``checkpoint_every`` steps; a rerun with the same parameters and
inputs continues from it. The final checkpoint is written atomically to ``<out>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from pipeline.errors import InputError
from pipeline.resume import without_run_settings

# torch and the training modules are imported inside the functions: `python -m pipeline --help`
# imports every command module and should stay fast.

log = logging.getLogger(__name__)

ARTIFACT_NAMES = {"scene": "scene.h5", "superpoints": "superpoints.h5", "boxes": "boxes.h5", "ncut": "ncut.h5",
                  "lifted": "lifted.h5"}


def scene_inputs_from_dir(scene_dir):
    """SceneInputs of one results/<scene> folder (optional artifacts only when present)."""
    from pipeline.train.data import SceneInputs

    scene_dir = Path(scene_dir)
    if not (scene_dir / "scene.h5").is_file():
        raise InputError(scene_dir, "has no scene.h5 (run ingest first)")
    found = {key: scene_dir / name for key, name in ARTIFACT_NAMES.items() if (scene_dir / name).is_file()}
    return SceneInputs(scene_dir.name, found["scene"], found.get("superpoints"), found.get("boxes"), found.get("ncut"),
                       found.get("lifted"))


def choose_mode(requested: str, inputs: list) -> str:
    """box / unsupervised; auto = box when every scene has boxes.h5, else unsupervised."""
    from pipeline.train.modes import resolve_mode

    missing = [item.name for item in inputs if item.boxes is None]
    try:
        mode = resolve_mode(requested, missing)
    except ValueError as exc:
        raise InputError(None, f"{exc}; run box_partition for them") from None
    if requested == "auto" and missing:
        log.info("mode auto -> unsupervised: scenes without boxes: %s", missing)
    return mode


def fingerprint(params: dict, mode: str, inputs: list) -> str:
    """Identity of a training run: parameters, mode and each input file's size and mtime."""
    files = []
    for item in inputs:
        for key in ARTIFACT_NAMES:
            path = getattr(item, key)
            if path is not None:
                stat = os.stat(path)
                files.append([item.name, key, str(path), stat.st_size, stat.st_mtime_ns])
    blob = json.dumps({"params": without_run_settings(params), "mode": mode, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def resume_path(out_path) -> Path:
    return Path(f"{out_path}.last")


def build_trainer(inputs: list, params: dict | None = None):
    from pipeline.train.config import merged_params, resolve
    from pipeline.train.data import label_vocabulary, load_scene
    from pipeline.train.loop import Trainer

    if not inputs:
        raise InputError(None, "train: no scenes given")
    merged = merged_params(params)
    config = resolve(params)
    mode = choose_mode(config.mode, inputs)
    labels = label_vocabulary(inputs) if mode == "box" else ["object"]
    label_index = {label: i for i, label in enumerate(labels)}
    scenes = [load_scene(item, label_index, want_boxes=mode == "box") for item in inputs]
    return Trainer(scenes, config, mode, labels, merged, fingerprint(merged, mode, inputs))


def run_train(inputs: list, out_path, params: dict | None = None, resume: bool = True,
              stop_after: int | None = None, on_phase_end=None) -> Path | None:
    """Train (resuming from ``<out>.last`` when it belongs to this run) and write ``out_path``.

    ``stop_after`` ends the run after that many steps, leaving only the resumable checkpoint
    (for tests and for splitting long runs); returns None then. ``inputs``: a list of
    ``pipeline.train.data.SceneInputs``; ``on_phase_end``: see ``Trainer.run``.
    """
    from pipeline.train.loop import atomic_torch_save, load_checkpoint_file

    trainer = build_trainer(inputs, params)
    last = resume_path(out_path)
    if resume and last.is_file():
        try:
            state = load_checkpoint_file(last)
        except InputError as exc:
            log.warning("ignoring unreadable resume checkpoint: %s", exc)
            state = None
        if state is not None and state.get("fingerprint") == trainer.fingerprint:
            trainer.load_state_dict(state)
            log.info("resumed from %s at step %d", last, trainer.step)
        elif state is not None:
            log.warning("ignoring %s: it belongs to another run (parameters or inputs changed)", last)
    log.info("training %s mode on %d scenes, %s preset, device %s", trainer.mode, len(trainer.scenes),
             trainer.config.preset, trainer.device)
    complete = trainer.run(checkpoint_path=last, stop_after=stop_after, on_phase_end=on_phase_end)
    if not complete:
        atomic_torch_save(trainer.state_dict(), last)
        return None
    atomic_torch_save(trainer.state_dict(), out_path)
    last.unlink(missing_ok=True)
    log.info("wrote %s after %d steps", out_path, trainer.step)
    return Path(out_path)


def _handle(args) -> int:
    params = json.loads(args.params) if args.params else {}
    for key in ("mode", "preset", "iterations", "device", "seed"):
        value = getattr(args, key)
        if value is not None:
            params[key] = value
    inputs = [scene_inputs_from_dir(d) for d in args.scene_dir]
    out = run_train(inputs, args.out, params, resume=not args.no_resume)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the instance model on all scenes (box: BEEP3D, unsupervised: UnScene3D + curriculum)",
        description="Train one model on all scenes. Each --scene-dir is a results/<scene> folder holding "
        "scene.h5 and superpoints.h5, plus boxes.h5 (box mode) or ncut.h5 / lifted.h5 (unsupervised).",
    )
    parser.add_argument("--scene-dir", action="append", required=True, help="results/<scene> folder (repeat)")
    parser.add_argument("--out", required=True, help="output model checkpoint (model.pt)")
    parser.add_argument("--mode", choices=["auto", "box", "unsupervised"])
    parser.add_argument("--preset", choices=["demo", "paper"])
    parser.add_argument("--iterations", type=int, help="box-mode steps")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--params", help="JSON object of train parameters (as in config.yaml's train section)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if <out>.last exists")
    parser.set_defaults(func=_handle)
