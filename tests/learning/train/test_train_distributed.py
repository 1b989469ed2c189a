"""Data-parallel training for real: 2 processes with the gloo backend on CPU against one process
with the same global batch (2 samples per step).

Tolerance: the 2-rank run sums the two ranks' gradients in gloo's all-reduce, the single process
sums them in autograd's gradient accumulation, so float32 rounding differs (about 1e-7 relative
per step) and AdamW carries it on; a few steps stay far inside 1e-5. A flipped discrete decision
(a Hungarian match, a teacher assignment, a thresholded prediction) would show as a difference
of the order of the learning rate, far above it. Across ranks the weights must be bitwise equal:
every rank applies the same all-reduced gradients.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from pipeline.learning.train import distributed
from pipeline.learning.train.config import resolve
from pipeline.learning.train.loop import Trainer

from learning.train.helpers import TINY_MODEL, gt_superpoint_masks, room_scene, write_room_artifacts

TOLERANCE = 1e-5
COMMON = {"model": TINY_MODEL, "log_every": 0, "checkpoint_every": 0, "device": "cpu", "batch_size": 2,
          "optimizer": {"lr": 2e-3, "schedule": "one_cycle", "pct_start": 0.3, "grad_clip": 1.0}}
BOX = {**COMMON, "iterations": 3, "box": {"ema_decay": 0.5}}
# Phase b adds the model's confident predictions (computed at its start, split over the ranks).
UNSUPERVISED = {**COMMON, "augment": {"rotate": False},
                "unsupervised": {"tau_conf": 0.0, "min_points": 1, "mask_threshold": 0.25,
                                 "phases": [{"name": "a", "targets": ["ncut"], "iterations": 2},
                                            {"name": "b", "targets": ["ncut", "predicted"], "iterations": 2}]}}


def _box_trainer(folders):
    from pipeline.commands.train import build_trainer, scene_inputs_from_dir

    return build_trainer([scene_inputs_from_dir(f) for f in folders], {**BOX, "mode": "box"})


def _unsupervised_trainer():
    scenes = []
    for seed in (0, 1):
        scene, _, gt_box = room_scene(seed, "tiny", with_boxes=False)
        scene.sources = {"ncut": gt_superpoint_masks(scene, gt_box)}
        scenes.append(scene)
    return Trainer(scenes, resolve(UNSUPERVISED), "unsupervised", ["object"])


def _weights(trainer) -> dict:
    out = {"student": {k: v.detach().clone() for k, v in trainer.student.state_dict().items()}}
    if trainer.teacher is not None:
        out["teacher"] = {k: v.detach().clone() for k, v in trainer.teacher.state_dict().items()}
    out["predicted"] = {k: torch.from_numpy(v) for k, v in trainer.predicted.items()}
    out["steps"] = trainer.step
    return out


def _worker(rank: int, world: int, port: int, folders: list, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    assert distributed.init("cpu")
    try:
        for name, make in (("box", lambda: _box_trainer(folders)), ("unsupervised", _unsupervised_trainer)):
            trainer = make()
            assert trainer.world == world and trainer.batch == 2
            trainer.run()
            torch.save(_weights(trainer), os.path.join(out_dir, f"{name}_rank{rank}.pt"))
    finally:
        distributed.destroy()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """Both cases trained by 2 gloo ranks (one spawn: the processes' start-up is paid once)."""
    root = tmp_path_factory.mktemp("ddp")
    folders = [str(write_room_artifacts(root / f"room{seed}", seed)) for seed in (0, 1)]
    started = time.monotonic()
    mp.start_processes(_worker, args=(2, _free_port(), folders, str(root)), nprocs=2, join=True,
                       start_method="spawn")
    print(f"2-rank gloo runs: {time.monotonic() - started:.1f} s")
    ranks = {name: [torch.load(root / f"{name}_rank{r}.pt", weights_only=True) for r in range(2)]
             for name in ("box", "unsupervised")}
    return folders, ranks


def test_ranks_hold_identical_student_and_teacher(two_rank_run):
    _, ranks = two_rank_run
    for name, (first, second) in ranks.items():
        for which in ("student", "teacher"):
            if which in first:
                assert all(torch.equal(first[which][k], second[which][k]) for k in first[which]), (name, which)
        assert first["predicted"].keys() == second["predicted"].keys()
        assert all(torch.equal(first["predicted"][k], second["predicted"][k]) for k in first["predicted"])
    assert "teacher" in ranks["box"][0]


def test_two_ranks_equal_one_process_with_the_same_global_batch(two_rank_run):
    folders, ranks = two_rank_run
    torch.set_num_threads(1)
    single = {}
    for name, make in (("box", lambda: _box_trainer(folders)), ("unsupervised", _unsupervised_trainer)):
        trainer = make()
        assert trainer.world == 1 and trainer.batch == 2
        trainer.run()
        single[name] = _weights(trainer)
    diffs = {}
    for name in single:
        ddp = ranks[name][0]
        assert ddp["steps"] == single[name]["steps"] > 0
        for which in ("student", "teacher"):
            if which in single[name]:
                diffs[f"{name} {which}"] = _max_diff(ddp[which], single[name][which])
    print("max |2 ranks - 1 process|:", diffs)
    assert max(diffs.values()) < TOLERANCE, diffs
    # The self-training round saw the same predictions (the 2 ranks predicted one scene each).
    predicted_single, predicted_ddp = single["unsupervised"]["predicted"], ranks["unsupervised"][0]["predicted"]
    assert predicted_single.keys() == predicted_ddp.keys() == {0, 1}
    assert all(torch.equal(predicted_single[k], predicted_ddp[k]) for k in predicted_single)
    assert any(len(v) for v in predicted_single.values())  # the round did add predictions
    # ...and training moved the weights by much more than the tolerance.
    start = _weights(_unsupervised_trainer())["student"]
    assert _max_diff(start, single["unsupervised"]["student"]) > 100 * TOLERANCE


def test_batch_and_shard_helpers():
    assert distributed.global_batch(None, 3) == 3 and distributed.global_batch(4, 2) == 4
    with pytest.raises(ValueError, match="does not split over 2 ranks"):
        distributed.global_batch(3, 2)
    assert distributed.shard([0, 1, 2, 3], 1, 2) == [2, 3]
    assert list(distributed.strided(5, 1, 2)) == [1, 3]
    assert distributed.rank_device("auto", 1, 1) == "auto"
    assert distributed.rank_device("cuda", 1, 2) == "cuda:1"
    with pytest.raises(ValueError, match="names one GPU"):
        distributed.rank_device("cuda:0", 0, 2)
    command = distributed.torchrun_command(2, ["train", "--out", "m.pt"])
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert command[5:] == ["-m", "pipeline", "train", "--out", "m.pt"]
    with pytest.raises(ValueError, match="train.batch_size 3 does not split over train.devices 2"):
        resolve({"devices": 2, "batch_size": 3})


def test_batch_of_two_counts_epochs_in_batches():
    scene, vocab, _ = room_scene(0, "tiny")
    one = Trainer([scene, scene], resolve({**COMMON, "batch_size": None, "epochs": 3}), "box", vocab)
    two = Trainer([scene, scene], resolve({**COMMON, "epochs": 3}), "box", vocab)
    assert one.phases[0].iterations == 6 and two.phases[0].iterations == 3


def test_torchrun_command_line_writes_one_model_equal_to_one_process(tmp_path):
    """`torchrun --standalone --nproc_per_node=2 -m pipeline train --inputs ...` (as the train rule
    runs it): rank 0 alone writes model.pt, equal to run_train in one process with the same batch."""
    import json
    import subprocess

    from pipeline.commands.train import run_train, scene_inputs_from_dir, write_inputs_file
    from pipeline.learning.train.loop import load_checkpoint_file

    inputs = [scene_inputs_from_dir(write_room_artifacts(tmp_path / f"room{seed}", seed)) for seed in (0, 1)]
    params = {**BOX, "iterations": 2, "devices": 2, "mode": "box"}
    listing = write_inputs_file(inputs, tmp_path / "inputs.json")
    out = tmp_path / "ddp" / "model.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(distributed.torchrun_command(2, ["train", "--inputs", str(listing), "--out", str(out),
                                                           "--params", json.dumps(params)]),
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("wrote ") == 1  # rank 0 reports, rank 1 is quiet
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt"]  # no temporary or resume file left
    torch.set_num_threads(1)
    single = run_train(inputs, tmp_path / "one" / "model.pt", {**params, "devices": 1, "batch_size": 2})
    ddp_state, single_state = load_checkpoint_file(out), load_checkpoint_file(single)
    assert ddp_state["complete"] and ddp_state["step"] == single_state["step"] == 2
    for which in ("student", "teacher"):
        assert _max_diff(ddp_state[which], single_state[which]) < TOLERANCE
