"""`python -m pipeline predict --model model.pt --scene-dir results/A --out pseudo_labels.h5`"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.params import PredictParams

log = logging.getLogger(__name__)


def training_masks(scene, train_config):
    """M^0 of an unsupervised run, (masks, their own scores): the file targets (ncut / lifted
    masks) of its last phase that has any; None when there are none."""
    from pipeline.learning.train.selftrain import file_targets

    for phase in reversed(train_config.phases):
        masks, scores = file_targets(scene.sources, phase.targets, scene.sp_size,
                                     train_config.unsupervised.duplicate_iou, scene.source_scores)
        if len(masks):
            return masks, scores
    return None


def run_predict(model_path, inputs, out_path, params: PredictParams | dict | None = None) -> Path:
    """Pseudo-labels of one scene (``inputs``: pipeline.learning.train.data.SceneInputs) -> pseudo_labels.h5."""
    # Imported here so that `python -m pipeline --help` does not load torch.
    from pipeline.devices import resolve_device
    from pipeline.learning.predict import predict_boxes, predict_unsupervised
    from pipeline.learning.train.config import resolve
    from pipeline.learning.train.data import load_scene
    from pipeline.learning.train.loop import build_model, load_checkpoint_file

    params = PredictParams.from_dict(params)
    state = load_checkpoint_file(model_path)
    if not state.get("complete"):
        log.warning("%s is an unfinished checkpoint (step %s)", model_path, state.get("step"))
    mode = state["mode"]
    which = params.model if params.model != "auto" else ("teacher" if mode == "box" else "student")
    if which == "teacher" and state.get("teacher") is None:
        raise InputError(model_path, "has no teacher network (it was trained in unsupervised mode); use model: student")
    device = resolve_device(params.device)
    try:
        model = build_model(state, which, device)
    except ValueError as exc:
        raise InputError(model_path, str(exc)) from None
    train_config = resolve(json.loads(state["params"]))
    if mode == "box" and inputs.boxes is None:
        raise InputError(inputs.scene, "the model was trained with boxes (box mode) but this scene has no boxes.h5; "
                                       "run box_partition (the scene needs boxes.json or ground truth)")
    label_index = {label: i for i, label in enumerate(state["labels"])}
    scene = load_scene(inputs, label_index, want_boxes=mode == "box")
    if mode == "box":
        labels = predict_boxes(model, scene, train_config.box, device, params.box_scores)
    else:
        labels = predict_unsupervised(model, scene, params, device, training_masks(scene, train_config))
    n_instances = int(len(labels.instance_score))
    log.info("%s: %s mode, %s network: %d instances, %d of %d points labelled", inputs.name, mode, which, n_instances,
             int((labels.point_instance >= 0).sum()), scene.n_points)
    if mode == "box":
        # Oracle boxes (ingest.boxes_from_ground_truth) travel with the labels made from them.
        labels.attrs["boxes_source"] = str(read_artifact(inputs.boxes, "boxes").attrs.get("boxes_source", ""))
    attrs = {"mode": mode, "network": which, "model_path": str(model_path), "model_step": int(state["step"]),
             "model_package_version": state.get("package_version", ""), "n_instances": n_instances,
             "scene_name": inputs.name, **labels.attrs}
    sources = [str(p) for p in (model_path, inputs.scene, inputs.superpoints, inputs.boxes, inputs.ncut, inputs.lifted)
               if p is not None]
    return write_artifact(out_path, "pseudo_labels", labels.arrays(), params=params.to_dict(), inputs=sources, attrs=attrs)


def _run(args) -> Path:
    from pipeline.commands.train import scene_inputs_from_dir

    return run_predict(args.model, scene_inputs_from_dir(args.scene_dir), args.out, params_from_args(args))


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "predict", _run,
        help="final per-point pseudo-labels of one scene from a trained model (pseudo_labels.h5)",
        description="Box mode: the EMA teacher decides the points inside several boxes; unsupervised mode: the "
        "model's confident masks. Writes point_instance, instance_score, instance_class (and point_box).",
        params=PredictParams, flags={"device": "auto | cpu | cuda | cuda:N"},
    )
    parser.add_argument("--model", required=True, help="model checkpoint from `train`")
    parser.add_argument("--scene-dir", required=True, help="results/<scene> folder (scene.h5, superpoints.h5, boxes.h5)")
    parser.add_argument("--out", required=True, help="output pseudo_labels.h5")

