"""`python -m pipeline export SCENE_H5 SUPERPOINTS_H5 LABELS_H5 --out DIR`: labels for trainers and the benchmark.

`python -m pipeline export --collect results/*/export --out DATASET` merges scenes into one dataset.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.io.artifacts import read_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.params import ExportParams
from pipeline.outputs.export import (
    AGNOSTIC_NYU40_ID,
    BENCHMARK_MIN_VERTICES,
    DEFAULT_CLASS_MAP,
    MMDET3D_ANN_FILE,
    SPLIT,
    collect_exports,
    export_instances,
    instances_without_superpoint_majority,
    mask3d_array,
    mmdet3d_arrays,
    mmdet3d_data_info,
    other_class_id,
    spformer_sample,
    write_colored_ply,
    write_instances_table,
    write_mask3d,
    write_mmdet3d,
    write_scannet_benchmark,
    write_spformer,
)
from pipeline.io.nyu40 import SCANNET18_IDS, nyu40_name

log = logging.getLogger(__name__)

def export_paths(out_dir, scene: str) -> dict[str, Path]:
    """The main file of each export (the Snakemake rule's outputs)."""
    out_dir = Path(out_dir)
    return {
        "scannet": out_dir / "scannet" / f"{scene}.txt",
        "spformer": out_dir / "spformer" / SPLIT / f"{scene}_inst_nostuff.pth",
        "mask3d": out_dir / "mask3d" / SPLIT / f"{scene}.npy",
        "mmdet3d": out_dir / "mmdet3d" / MMDET3D_ANN_FILE,
        "instances": out_dir / "instances.tsv",
        "ply": out_dir / f"{scene}_instances.ply",
    }


def _resolved_params(params: ExportParams | dict | None) -> ExportParams:
    """The parameters with the built-in class map under the configured one."""
    params = ExportParams.from_dict(params)
    other_class_id(params.other_class)  # a bad value is a config error, not the labels file's
    return params.replace(class_map={**DEFAULT_CLASS_MAP, **(params.class_map or {})})


def _log_classes(scene: str, instances, superpoints) -> None:
    if instances.class_agnostic:
        log.info("%s: class-agnostic labels: every instance exported as NYU40 %d (%s), class index 0 in every "
                 "consumer", scene, AGNOSTIC_NYU40_ID, nyu40_name(AGNOSTIC_NYU40_ID))
    else:
        moved = sorted({(str(c), nyu40_name(int(i))) for c, i in zip(instances.source_class, instances.nyu40)})
        log.info("%s: box classes: %s", scene, ", ".join(f"{c} -> {n}" for c, n in moved))
    dropped = [k for k in range(instances.n_instances) if instances.nyu40[k] not in SCANNET18_IDS]
    if dropped:
        log.warning("%s: instances %s keep NYU40 classes outside the benchmark's 18 (other_class is null): "
                    "SPFormer and the benchmark script drop them", scene, dropped)
    small = np.flatnonzero(np.bincount(instances.point_instance[instances.point_instance >= 0],
                                       minlength=instances.n_instances) < BENCHMARK_MIN_VERTICES)
    if len(small):
        log.info("%s: %d instance(s) under %d points, which the benchmark script (like our evaluation) skips",
                 scene, len(small), BENCHMARK_MIN_VERTICES)
    empty = instances_without_superpoint_majority(instances.point_instance, superpoints)
    if len(empty):
        log.warning("%s: instances %s hold no superpoint by majority: SPFormer and OneFormer3D see them as empty "
                    "superpoint masks", scene, empty.tolist())
    if instances.n_instances and (instances.point_instance >= 0).all():
        log.warning("%s: every point is in an instance; OneFormer3D's AddSuperPointAnnotations asserts that some "
                    "point is not", scene)


def run_export(scene_h5, superpoints_h5, labels_h5, out_dir, scene: str | None = None,
               params: ExportParams | dict | None = None) -> dict[str, Path]:
    """Write every export of one scene (see pipeline/outputs/export.py) under ``out_dir``; returns ``export_paths``."""
    params = _resolved_params(params)
    scene_art = read_artifact(scene_h5, "scene", required=["vertices", "colors", "normals"])
    superpoints = read_artifact(superpoints_h5, "superpoints", required=["point_superpoint"])["point_superpoint"]
    labels = read_artifact(labels_h5, Path(labels_h5).stem, required=["point_instance"])
    point_instance = labels["point_instance"]
    scene = scene or scene_art.attrs.get("scene_name") or Path(scene_h5).parent.name
    vertices, colors = scene_art["vertices"], scene_art["colors"]
    for name, array in (("labels", point_instance), ("superpoints", superpoints)):
        if len(array) != len(vertices):
            source = labels_h5 if name == "labels" else superpoints_h5
            raise InputError(source, f"{len(array)} {name} for {len(vertices)} points in {scene_h5}")
    try:
        instances = export_instances(point_instance, labels.get("instance_score"), labels.get("instance_class"),
                                     params.class_map, params.other_class)
    except ValueError as exc:
        raise InputError(labels_h5, str(exc)) from None
    _log_classes(scene, instances, superpoints)

    paths = export_paths(out_dir, scene)
    write_scannet_benchmark(paths["scannet"].parent, scene, instances)
    write_spformer(paths["spformer"], spformer_sample(vertices, colors, superpoints, instances))
    write_mask3d(Path(out_dir) / "mask3d", scene,
                 mask3d_array(vertices, colors, scene_art["normals"], superpoints, instances), colors)
    write_mmdet3d(Path(out_dir) / "mmdet3d", scene, mmdet3d_arrays(vertices, colors, superpoints, instances),
                  mmdet3d_data_info(scene, vertices, instances))
    write_instances_table(paths["instances"], scene, instances)
    write_colored_ply(paths["ply"], vertices, instances.point_instance, scene_art.get("faces"))
    log.info("exported %d instances of %s from %s", instances.n_instances, scene, labels_h5)
    return paths


def _class_map_argument(text: str) -> tuple[str, str]:
    name, sep, target = text.partition("=")
    if not sep or not name.strip() or not target.strip():
        raise ValueError(f"--class-map wants RAW=NYU40NAME, got {text!r}")
    return name.strip(), target.strip()


def _run(args) -> None:
    if args.collect:
        if args.files:
            raise InputError(None, "--collect takes export folders only; drop the SCENE_H5 ... arguments")
        counts = collect_exports(args.collect, args.out)
        for consumer, n in counts.items():
            print(f"{consumer}: {n} scene(s) in {Path(args.out) / consumer}")
        return None
    if len(args.files) != 3:
        raise InputError(None, "export wants SCENE_H5 SUPERPOINTS_H5 LABELS_H5 (or --collect EXPORT_DIR ...)")
    params = params_from_args(args)
    # Repeated --class-map entries add to the --params map; "none" is how a shell writes null.
    if args.class_map:
        params["class_map"] = {**(params.get("class_map") or {}), **dict(args.class_map)}
    if args.other_class is not None:
        params["other_class"] = None if args.other_class.lower() in ("none", "null") else args.other_class
    for kind, path in run_export(*args.files, args.out, params=params).items():
        print(f"{kind}: {path}")
    return None


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "export", _run,
        help="write labels for SPFormer, Mask3D, OneFormer3D/mmdetection3d and ScanNet's benchmark script",
        description="Export per-point instances (any artifact with point_instance: pseudo_labels.h5, lifted.h5, "
        "ncut.h5) in each consumer's own layout, or merge several scenes' exports with --collect.",
        params=ExportParams)
    parser.add_argument("files", nargs="*", metavar="SCENE_H5 SUPERPOINTS_H5 LABELS_H5")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--class-map", action="append", default=[], metavar="RAW=NYU40NAME", type=_class_map_argument,
                        help="box label -> NYU40 class name (repeatable)")
    parser.add_argument("--other-class",
                        help="class for NYU40 classes outside the benchmark's 18 (none: keep them; consumers drop "
                        f"them) (default: {ExportParams.other_class})")
    parser.add_argument("--collect", nargs="+", metavar="EXPORT_DIR",
                        help="merge these per-scene export folders into one dataset folder (--out)")
