"""`python -m pipeline train --scene-dir results/A --scene-dir results/B --out model.pt`

Trains one model on all scenes. Box mode (BEEP3D) needs each scene's boxes.h5; unsupervised mode
(UnScene3D + curriculum) uses ncut.h5 and/or lifted.h5. While training, a resumable checkpoint
``<out>.last`` is written every ``checkpoint_every`` steps; a rerun with the same parameters and
inputs continues from it. The final checkpoint is written atomically to ``<out>``.

Started by ``torchrun --nproc_per_node=N`` (train.devices > 1: the train rule does it), each
process is one rank of data-parallel training; rank 0 alone writes the checkpoints and ``<out>``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.io.resume import fingerprint as run_fingerprint

# torch and the training modules are imported inside the functions: `python -m pipeline --help`
# imports every command module and should stay fast.

log = logging.getLogger(__name__)

ARTIFACT_NAMES = {"scene": "scene.h5", "superpoints": "superpoints.h5", "boxes": "boxes.h5", "ncut": "ncut.h5",
                  "lifted": "lifted.h5"}


def scene_inputs_from_dir(scene_dir):
    """SceneInputs of one results/<scene> folder (optional artifacts only when present)."""
    from pipeline.learning.train.data import SceneInputs

    scene_dir = Path(scene_dir)
    if not (scene_dir / "scene.h5").is_file():
        raise InputError(scene_dir, "has no scene.h5 (run ingest first)")
    found = {key: scene_dir / name for key, name in ARTIFACT_NAMES.items() if (scene_dir / name).is_file()}
    return SceneInputs(scene_dir.name, found["scene"], found.get("superpoints"), found.get("boxes"), found.get("ncut"),
                       found.get("lifted"))


def choose_mode(requested: str, inputs: list) -> str:
    """box / unsupervised; auto = box when every scene has boxes.h5, else unsupervised."""
    from pipeline.learning.train.modes import resolve_mode

    missing = [item.name for item in inputs if item.boxes is None]
    try:
        mode = resolve_mode(requested, missing)
    except ValueError as exc:
        raise InputError(None, f"{exc}; run box_partition for them") from None
    if requested == "auto" and missing:
        log.info("mode auto -> unsupervised: scenes without boxes: %s", missing)
    return mode


def fingerprint(params: dict, mode: str, inputs: list) -> str:
    """Identity of a training run (pipeline.io.resume.fingerprint): parameters, mode, and each scene's
    artifacts with their size and mtime."""
    present = [(item.name, key, getattr(item, key)) for item in inputs for key in ARTIFACT_NAMES
               if getattr(item, key) is not None]
    return run_fingerprint(params, [path for _, _, path in present],
                           extra={"mode": mode, "artifacts": [[name, key] for name, key, _ in present]})


def resume_path(out_path) -> Path:
    return Path(f"{out_path}.last")


def build_trainer(inputs: list, params: dict | None = None):
    from pipeline.learning.train.config import merged_params, resolve
    from pipeline.learning.train.data import SceneStore, label_vocabulary
    from pipeline.learning.train.loop import Trainer

    if not inputs:
        raise InputError(None, "train: no scenes given")
    merged = merged_params(params)
    config = resolve(params)
    mode = choose_mode(config.mode, inputs)
    labels = label_vocabulary(inputs) if mode == "box" else ["object"]
    label_index = {label: i for i, label in enumerate(labels)}
    # Scenes stream from their artifacts (train.scene_cache of them in memory), so memory does not
    # grow with the number of scenes; the vocabulary above reads only the boxes' labels.
    scenes = SceneStore.from_inputs(inputs, label_index, mode == "box", config.scene_cache, config.prefetch,
                                    config.box.targets_without_surface_background)
    return Trainer(scenes, config, mode, labels, merged, fingerprint(merged, mode, inputs))


def run_train(inputs: list, out_path, params: dict | None = None, resume: bool = True,
              stop_after: int | None = None, on_phase_end=None) -> Path | None:
    """Train (resuming from ``<out>.last`` when it belongs to this run) and write ``out_path``.

    ``stop_after`` ends the run after that many steps, leaving only the resumable checkpoint
    (for tests and for splitting long runs); returns None then. ``inputs``: a list of
    ``pipeline.learning.train.data.SceneInputs``; ``on_phase_end``: see ``Trainer.run``. Under torchrun
    it joins the process group (unless the caller already has) and leaves it at the end.
    """
    from pipeline.learning.train import distributed
    from pipeline.learning.train.config import merged_params

    joined = not distributed.active() and distributed.init(str(merged_params(params)["device"]))
    try:
        return _train_and_write(inputs, out_path, params, resume, stop_after, on_phase_end)
    finally:
        if joined:
            distributed.destroy()


def _train_and_write(inputs, out_path, params, resume, stop_after, on_phase_end) -> Path | None:
    from pipeline.learning.train import distributed
    from pipeline.learning.train.loop import atomic_torch_save, load_checkpoint_file

    trainer = build_trainer(inputs, params)
    if trainer.config.devices > 1 and trainer.world == 1:
        log.warning("train.devices is %d but this is a single process: training on one device (start it with "
                    "torchrun --nproc_per_node=%d, as the train rule does)", trainer.config.devices,
                    trainer.config.devices)
    elif trainer.world > 1 and trainer.world != trainer.config.devices:
        log.warning("%d ranks running, train.devices says %d", trainer.world, trainer.config.devices)
    # Every rank reads the same resume checkpoint; rank 0 rewrites it only after a step, which
    # needs every rank's gradients, so no rank can read a half-updated run.
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
    log.info("training %s mode on %d scenes, %s preset, device %s%s, %d sample(s) per step", trainer.mode,
             len(trainer.scenes), trainer.config.preset, trainer.device,
             f" x {trainer.world} ranks" if trainer.world > 1 else "", trainer.batch)
    complete = trainer.run(checkpoint_path=last, stop_after=stop_after, on_phase_end=on_phase_end)
    if distributed.is_main():  # every rank holds the same weights; one writes them
        if not complete:
            atomic_torch_save(trainer.state_dict(), last)
        else:
            atomic_torch_save(trainer.state_dict(), out_path)
            last.unlink(missing_ok=True)
            log.info("wrote %s after %d steps", out_path, trainer.step)
    distributed.barrier()  # the other ranks return once the files are in place
    return Path(out_path) if complete else None


TRAIN_FLAGS = ("mode", "preset", "iterations", "device", "seed")


def _run(args):
    params = params_from_args(args)
    if bool(args.scene_dir) == bool(args.inputs):
        raise InputError(None, "train: give either --scene-dir (repeat) or --inputs, not both or neither")
    inputs = [scene_inputs_from_dir(d) for d in args.scene_dir] if args.scene_dir else read_inputs_file(args.inputs)
    out = run_train(inputs, args.out, params, resume=not args.no_resume)
    from pipeline.learning.train import distributed

    return out if distributed.env_world()[0] == 0 else None  # one rank reports what was written


INPUT_KEYS = ("name", "scene", "superpoints", "boxes", "ncut", "lifted")


def write_inputs_file(inputs: list, path) -> Path:
    """The scenes of a run as JSON (``--inputs``): exactly these files, none found by name."""
    path = Path(path)
    rows = [{key: None if getattr(item, key) is None else str(getattr(item, key)) for key in INPUT_KEYS}
            for item in inputs]
    path.write_text(json.dumps(rows, indent=1))
    return path


def read_inputs_file(path) -> list:
    from pipeline.learning.train.data import SceneInputs

    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the train inputs file: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("name") and r.get("scene") for r in rows):
        raise InputError(path, "must be a JSON list of {name, scene, superpoints, boxes, ncut, lifted} objects")
    unknown = {key for row in rows for key in row} - set(INPUT_KEYS)
    if unknown:
        raise InputError(path, f"unknown key(s) {sorted(unknown)}; known: {list(INPUT_KEYS)}")
    return [SceneInputs(row["name"], *(None if row.get(key) is None else Path(row[key]) for key in INPUT_KEYS[1:]))
            for row in rows]


def register(subparsers) -> None:
    # train's parameters are the nested train section (pipeline/learning/train/config.py checks them),
    # so its flags are declared here rather than generated from a StageParams class.
    parser = add_command(
        subparsers, "train", _run,
        help="train the instance model on all scenes (box: BEEP3D, unsupervised: UnScene3D + curriculum)",
        description="Train one model on all scenes. Each --scene-dir is a results/<scene> folder holding "
        "scene.h5 and superpoints.h5, plus boxes.h5 (box mode) or ncut.h5 / lifted.h5 (unsupervised).",
    )
    parser.add_argument("--scene-dir", action="append", help="results/<scene> folder (repeat)")
    parser.add_argument("--inputs", help="JSON list of scenes with their artifact paths (instead of --scene-dir; "
                        "the train rule writes it for torchrun)")
    parser.add_argument("--out", required=True, help="output model checkpoint (model.pt)")
    parser.add_argument("--mode", choices=["auto", "box", "unsupervised"])
    parser.add_argument("--preset", choices=["demo", "paper"])
    parser.add_argument("--iterations", type=int, help="box-mode steps")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--params", metavar="JSON",
                        help="train parameters as a JSON object, as in config.yaml's train section (flags override it)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if <out>.last exists")
    parser.set_defaults(_flags=TRAIN_FLAGS)
