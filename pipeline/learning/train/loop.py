"""The training loop: phases of steps, one scene (or one view of a scene) per step, or
``train.batch_size`` of them (gradients averaged over the batch), with checkpoints that can be
resumed exactly. Under torchrun each rank trains on its share of every step's batch and the
ranks average their gradients (``pipeline.learning.train.distributed``).

Every random choice of step t (which scene, which augmentation) comes from a generator seeded
by (seed, phase, step) (and the sample's place in the batch), so a run resumed from a checkpoint
takes the same next step as an uninterrupted one, and every rank draws what one process would. BatchNorm uses batch statistics only (one scene is the batch), so the model
has no running buffers and the teacher is a pure parameter average.

Checkpoint (torch.save of plain tensors and strings; load with weights_only=True): format and
version, package version, mode, labels, the merged training parameters, the model config,
student (and teacher) weights, optimizer state, step counters, the self-training masks of the
current phase, a short loss history, and ``complete``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from pipeline import __version__
from pipeline.io.checkpoints import read_torch_file
from pipeline.errors import InputError
from pipeline.learning.model.net import InstanceNet, ModelConfig, SceneTensors, prepare_scene, resolve_device
from pipeline.learning.train.beep3d import beep3d_losses, box_query_coords, initial_query_coords, teacher_pseudo_masks
from pipeline.learning.train.config import Phase, TrainConfig
from pipeline.learning.train import distributed
from pipeline.learning.train.data import (
    SceneStore,
    TrainScene,
    box_anchor,
    budget_crop,
    identity_augmentation,
    sample_augmentation,
    target_anchor,
    view_crop,
)
from pipeline.learning.train.ema import ema_decay, ema_update, make_teacher
from pipeline.learning.train.selftrain import (
    VIEW_SOURCES,
    file_targets,
    novel_masks,
    predicted_masks,
    unsupervised_losses,
)

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "scan-pseudolabels-model"
CHECKPOINT_VERSION = 1


def one_cycle_lr(step: int, total: int, max_lr: float, pct_start: float, div: float = 25.0, final_div: float = 1e4) -> float:
    """One-cycle schedule: cosine warm-up from max_lr/div to max_lr over the first pct_start of
    the steps, then cosine annealing down to max_lr/(div*final_div)."""
    total = max(int(total), 1)
    warm = max(int(round(pct_start * total)), 1)
    start, end = max_lr / div, max_lr / (div * final_div)
    if step < warm:
        t = step / warm
        return start + (max_lr - start) * (1 - math.cos(math.pi * t)) / 2
    t = min((step - warm) / max(total - warm, 1), 1.0)
    return end + (max_lr - end) * (1 + math.cos(math.pi * t)) / 2


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file beside ``path``, renamed into place when complete."""
    from pipeline.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint_file(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model checkpoint not found (run the 'train' stage first)")
    state = read_torch_file(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, "is not a checkpoint of this pipeline")
    if state.get("format_version") != CHECKPOINT_VERSION:
        raise InputError(path, f"has checkpoint format {state.get('format_version')}, this package reads "
                               f"{CHECKPOINT_VERSION}; retrain")
    return state


def model_config_from(state: dict) -> ModelConfig:
    values = json.loads(state["model_config"])
    return ModelConfig().with_overrides(values)


def build_model(state: dict, which: str = "student", device="cpu") -> InstanceNet:
    """The student or teacher network of a checkpoint, weights loaded with strict key checking."""
    if state.get(which) is None:
        raise ValueError(f"this checkpoint has no {which} network")
    model = InstanceNet(model_config_from(state))
    missing, unexpected = model.load_state_dict(state[which], strict=False)
    if missing or unexpected:
        raise ValueError(f"checkpoint {which} weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(resolve_device(device)).eval()


def _pack(masks: np.ndarray) -> dict:
    masks = np.asarray(masks, bool)
    return {"bits": torch.from_numpy(np.packbits(masks.reshape(-1))), "shape": torch.tensor(masks.shape, dtype=torch.int64)}


def _unpack(packed: dict) -> np.ndarray:
    shape = tuple(int(x) for x in packed["shape"])
    count = int(np.prod(shape))
    return np.unpackbits(packed["bits"].numpy())[:count].astype(bool).reshape(shape)


@dataclass
class Sample:
    scene: int
    view: int | None = None


def view_source(phase: Phase) -> str | None:
    """The phase's view source (lifted_views | raw_views; config.resolve keeps it alone), or None."""
    return next((t for t in phase.targets if t in VIEW_SOURCES), None)


class Trainer:
    def __init__(self, scenes: list[TrainScene] | SceneStore, config: TrainConfig, mode: str, labels: list[str],
                 params: dict | None = None, fingerprint: str = ""):
        if mode not in ("box", "unsupervised"):
            raise ValueError(f"mode must be box or unsupervised, got {mode!r}")
        # A SceneStore streams scenes from their artifacts (bounded cache); a list is held as it is.
        self.scenes = scenes if isinstance(scenes, SceneStore) else SceneStore.in_memory(scenes)
        self.config = config
        self.mode = mode
        self.labels = list(labels) if mode == "box" else ["object"]
        self.params = params or {}
        self.fingerprint = fingerprint
        # Data-parallel (torchrun): this process is one rank; every rank holds the same scenes,
        # takes the same sample order and the same model, and trains on its shard of each batch.
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.device = resolve_device(distributed.rank_device(config.device, distributed.env_world()[1], self.world))
        self.batch = distributed.global_batch(config.batch_size, self.world)  # samples per step, all ranks
        torch.manual_seed(config.seed)
        self.model_config = replace(config.model, n_classes=max(len(self.labels), 1))
        self.student = InstanceNet(self.model_config).to(self.device)
        distributed.broadcast_parameters(self.student)  # every rank starts from rank 0's weights
        self.teacher = make_teacher(self.student) if mode == "box" else None
        self.phases = self._plan_phases()
        self.step = 0  # student steps done in all phases
        self.phase_index = 0
        self.phase_step = 0  # steps done in the current phase
        self.history: list[dict] = []
        self.predicted: dict[int, np.ndarray] = {}  # scene -> predicted masks (M, S) of this phase
        self._targets: OrderedDict = OrderedDict()  # LRU of full-scene targets, as many as the scene cache
        self.samples: list[Sample] = []
        self._phase_ready = False
        self.optimizer = self._new_optimizer()

    # -- planning ------------------------------------------------------------------------------

    def _box_scenes(self) -> list[int]:
        summaries = self.scenes.summaries()  # planning reads summaries: no scene stays loaded for it
        usable = [i for i, s in enumerate(summaries) if s.n_boxes > 0]
        for i, s in enumerate(summaries):
            if i not in usable:
                log.warning("%s has no boxes: box training skips it", s.name)
        return usable

    def _plan_phases(self) -> list[Phase]:
        if self.mode == "box":
            usable = self._box_scenes()
            if not usable:
                raise InputError(None, "box mode: no scene has any box (check boxes.json / ground truth, or use "
                                       "train.mode unsupervised)")
            return [Phase("beep3d", ("boxes",), iterations=self.config.box_steps(len(usable), self.batch))]
        phases = []
        for phase in self.config.phases:
            source = view_source(phase)
            if source is not None:
                if not any(source in s.views for s in self.scenes.summaries()):
                    group = "views/*" if source == "lifted_views" else "raw_views/* (lift with masks2d.h5)"
                    log.warning("phase %s skipped: no lifted.h5 has %s masks (%s)", phase.name, source, group)
                    continue
            elif phase.targets == ("predicted",):
                if not phases:
                    log.warning("phase %s learns only its own predictions but nothing was trained before it", phase.name)
            elif not any(s.has_file_targets(phase.targets) for s in self.scenes.summaries()) \
                    and "predicted" not in phase.targets:
                log.warning("phase %s skipped: no scene has masks from %s", phase.name, list(phase.targets))
                continue
            phases.append(phase)
        if not phases:
            raise InputError(None, "unsupervised mode: no pseudo-masks to train on (no ncut.h5 / lifted.h5 masks "
                                   "in any scene, or no phases configured)")
        return phases

    def _new_optimizer(self) -> torch.optim.Optimizer:
        opt = self.config.optimizer
        return torch.optim.AdamW(self.student.parameters(), lr=float(opt["lr"]), weight_decay=float(opt["weight_decay"]))

    # -- targets -------------------------------------------------------------------------------

    @torch.no_grad()
    def _predict_masks(self, scene: TrainScene) -> np.ndarray:
        tensors = self._tensors(scene, identity_augmentation(scene.points.mean(0)))
        self.student.eval()
        out = self.student(tensors, initial_query_coords(tensors, self.model_config.n_queries))
        self.student.train()
        masks, scores = predicted_masks(out, tensors.sp_size, self.config.unsupervised)
        return masks[scores >= self.config.unsupervised.tau_conf]

    def _file_targets(self, scene: TrainScene, phase: Phase) -> np.ndarray:
        """Union of the phase's file sources ("a|b": the first of a, b this scene has masks from)."""
        return file_targets(scene.sources, phase.targets, scene.sp_size, self.config.unsupervised.duplicate_iou)

    def phase_targets(self, scene_index: int, phase: Phase, scene: TrainScene | None = None) -> np.ndarray:
        """(K, S) pseudo-masks of a full scene in an unsupervised phase (``scene``: the loaded scene,
        when the caller has it). Cached for as many scenes as the scene cache holds: they are
        recomputed exactly from the scene and the phase's predictions."""
        key = (self.phase_index, scene_index, phase.name)
        if key in self._targets:
            self._targets.move_to_end(key)
        else:
            self._targets[key] = self._compute_targets(scene_index, phase, scene)
            while len(self._targets) > self.config.scene_cache:
                self._targets.popitem(last=False)
        return self._targets[key]

    def _compute_targets(self, scene_index: int, phase: Phase, scene: TrainScene | None = None) -> np.ndarray:
        scene = self.scenes[scene_index] if scene is None else scene
        targets = self._file_targets(scene, phase)
        if "predicted" in phase.targets and scene_index in self.predicted:
            # self.predicted holds the confident predictions; add those no other source covers.
            novel = novel_masks(self.predicted[scene_index], targets, scene.sp_size, self.config.unsupervised.novel_iou)
            targets = np.concatenate([targets, novel]) if len(targets) else novel
        if len(targets) > self.model_config.n_queries:
            # Hungarian matching gives each target its own query: the rest never teach anything.
            log.warning("%s: %d pseudo-masks in phase %s but the model has %d queries; %d of them are never matched "
                        "(raise train.model.n_queries)", scene.name, len(targets), phase.name,
                        self.model_config.n_queries, len(targets) - self.model_config.n_queries)
        return targets

    def _start_phase(self) -> None:
        """Prepare the current phase: fresh optimizer and predictions at its start, its samples."""
        phase = self.phases[self.phase_index]
        if self.phase_step == 0:
            self.optimizer = self._new_optimizer()
            self.predicted = {}
            if self.mode == "unsupervised" and "predicted" in phase.targets:
                # Each rank predicts every world-th scene from the same weights; all ranks then hold all.
                mine = distributed.strided(len(self.scenes), self.rank, self.world)
                self.predicted = distributed.merged_dicts({i: self._predict_masks(self.scenes[i]) for i in mine})
                added = sum(len(m) for m in self.predicted.values())
                log.info("phase %s: %d confident predicted masks over %d scenes", phase.name, added, len(self.scenes))
        self._targets = OrderedDict()
        self.samples = self._samples(phase)

    def _ensure_phase(self) -> bool:
        """Make the current phase ready, skipping phases with nothing to learn; False when done."""
        while not self.complete:
            if self._phase_ready:
                return True
            self._start_phase()
            phase = self.phases[self.phase_index]
            if self.samples and self._phase_steps(phase) > 0:
                log.info("phase %s: %d steps over %d samples (targets: %s)", phase.name, self._phase_steps(phase),
                         len(self.samples), ", ".join(phase.targets))
                self._phase_ready = True
                return True
            log.warning("phase %s skipped: %s", phase.name,
                        "no scene has any pseudo-mask in it" if not self.samples else "it has 0 steps")
            self.phase_index += 1
            self.phase_step = 0
        return False

    def _phase_steps(self, phase: Phase) -> int:
        """Steps of the current phase: its iterations, or epochs x the phase's samples."""
        return phase.steps(len(self.samples), self.batch)

    def _samples(self, phase: Phase) -> list[Sample]:
        if self.mode == "box":
            return [Sample(i) for i in self._box_scenes()]
        source = view_source(phase)
        summaries = self.scenes.summaries()
        if source is not None:
            out = []
            for i, summary in enumerate(summaries):
                if source in summary.views:
                    out += [Sample(i, int(v)) for v in summary.views[source]]
            return out
        out = []
        for i, summary in enumerate(summaries):
            # Non-empty targets without loading the scene: file masks, or (with none) any confident
            # prediction, all of which are then new.
            if summary.has_file_targets(phase.targets) or ("predicted" in phase.targets and len(self.predicted.get(i, ()))):
                out.append(Sample(i))
            else:
                log.warning("%s: no pseudo-masks in phase %s; the scene is skipped", summary.name, phase.name)
        return out

    # -- one step ------------------------------------------------------------------------------

    def _rng(self, index: int = 0) -> np.random.Generator:
        """Generator of sample ``index`` of the step's global batch (the same on every rank)."""
        key = [self.config.seed, self.phase_index, self.phase_step]
        return np.random.default_rng(key + [index] if index else key)  # index 0: the key of one-sample steps

    def _batch(self) -> list[Sample]:
        """The step's global batch: the next ``self.batch`` samples of the phase's per-epoch orders."""
        return [self._sample_at(k) for k in range(self.phase_step * self.batch, (self.phase_step + 1) * self.batch)]

    def _sample_at(self, k: int) -> Sample:
        """Sample ``k`` of the phase (``_batch`` takes samples in this order)."""
        epoch, offset = divmod(k, len(self.samples))
        return self.samples[np.random.default_rng([self.config.seed, self.phase_index, epoch, 1]).permutation(
            len(self.samples))[offset]]

    def upcoming_scenes(self) -> list[int]:
        """Scenes this rank trains on in this step and the next ``train.prefetch`` steps, in order:
        the order is fixed by the seed, so the loader can read them ahead."""
        if not self._ensure_phase():
            return []
        out = []
        last = min(self.phase_step + 1 + max(self.config.prefetch, 1), self._phase_steps(self.phases[self.phase_index]))
        for step in range(self.phase_step, last):
            positions = list(range(step * self.batch, (step + 1) * self.batch))
            out += [self._sample_at(k).scene for k in distributed.shard(positions, self.rank, self.world)]
        return out

    def _tensors(self, scene: TrainScene, aug) -> SceneTensors:
        return prepare_scene(aug.points(scene.points), aug.colors(scene.colors), aug.normals(scene.normals),
                             scene.point_superpoint, self.model_config.voxel_size, self.device)

    def _learning_rate(self) -> float:
        opt = self.config.optimizer
        phase = self.phases[self.phase_index]
        peak = float(phase.lr if phase.lr is not None else opt["lr"])
        if opt["schedule"] == "constant":
            return peak
        return one_cycle_lr(self.phase_step, self._phase_steps(phase), peak, float(opt["pct_start"]))

    def _losses(self, sample: Sample, rng: np.random.Generator) -> dict:
        scene = self.scenes[sample.scene]
        phase = self.phases[self.phase_index]
        if sample.view is not None:
            scene, targets = view_crop(scene, scene.view_masks(view_source(phase)), sample.view)
        else:
            targets = self.phase_targets(sample.scene, phase, scene) if self.mode == "unsupervised" else None
        self.scenes.prefetch(self.upcoming_scenes())  # read the next scenes while this one trains
        if self.config.max_points_per_step and scene.n_points > self.config.max_points_per_step:
            # Drawn from the step's generator before the augmentation, and only when cropping, so
            # steps on scenes within the budget draw exactly what they drew before.
            anchor = box_anchor(scene) if self.mode == "box" else target_anchor(scene, targets)
            scene, targets = budget_crop(scene, self.config.max_points_per_step, rng, targets, anchor)
        augment = {**self.config.augment, **(phase.augment or {})}
        aug = sample_augmentation(rng, scene.points.mean(0), augment)
        tensors = self._tensors(scene, aug)
        query_coords = initial_query_coords(tensors, self.model_config.n_queries)
        if self.mode == "box":
            boxes = scene.boxes
            fractions = torch.from_numpy(scene.box_fractions).to(self.device)
            centres = aug.points(boxes.centre)
            teacher = teacher_pseudo_masks(self.teacher, tensors, boxes, fractions, centres, self.config.box, query_coords)
            box_queries = self.config.box.queries == "boxes"
            out = self.student(tensors, box_query_coords(tensors, centres) if box_queries else query_coords)
            return beep3d_losses(out, teacher, boxes, tensors, self.config.loss, self.config.box.match, box_queries)
        out = self.student(tensors, query_coords)
        weights = replace(self.config.loss, **phase.loss) if phase.loss else self.config.loss
        return unsupervised_losses(out, torch.from_numpy(targets).to(self.device), tensors, weights,
                                   self.config.box.match, self.config.unsupervised)

    def train_step(self) -> dict:
        if not self._ensure_phase():
            raise RuntimeError("training is complete")
        started = time.monotonic()
        self.student.train()
        batch = self._batch()
        mine = distributed.shard(list(enumerate(batch)), self.rank, self.world)
        lr = self._learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for index, sample in mine:
            if self.model_config.dropout > 0:  # dropout masks per sample, not per rank or per process
                torch.manual_seed(hash((self.config.seed, self.phase_index, self.phase_step, index)) % 2**63)
            terms = self._losses(sample, self._rng(index))
            loss = sum(terms.values())
            # Mean over this rank's samples; averaging the ranks' gradients then gives the mean over
            # the global batch, as one process with the whole batch computes it.
            (loss / len(mine)).backward()
            for key, value in {"loss": loss, **terms}.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
        distributed.average_gradients(self.student.parameters())
        terms = self._batch_means(sums, len(batch))
        clip = float(self.config.optimizer.get("grad_clip") or 0)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), clip)
        self.optimizer.step()
        if self.teacher is not None:
            ema_update(self.teacher, self.student, ema_decay(self.step, self.config.box.ema_decay))
        self.step += 1
        self.phase_step += 1
        record = {"step": self.step, "phase": self.phases[self.phase_index].name,
                  "scene": ",".join(self.scenes.names[s.scene] for s in batch), "lr": lr,
                  "seconds": time.monotonic() - started, **terms}
        if self.phase_step >= self._phase_steps(self.phases[self.phase_index]):
            self.phase_index += 1
            self.phase_step = 0
            self._phase_ready = False
        return record

    def _batch_means(self, sums: dict[str, float], count: int) -> dict[str, float]:
        """Each loss term's mean over the global batch (summed over ranks: the log shows them all)."""
        if self.world == 1:
            return {key: value / count for key, value in sums.items()}
        total: dict[str, float] = {}
        for part in distributed.all_gather_objects(sums):
            for key, value in part.items():
                total[key] = total.get(key, 0.0) + value
        return {key: value / count for key, value in total.items()}

    @property
    def complete(self) -> bool:
        return self.phase_index >= len(self.phases)

    def run(self, checkpoint_path: str | os.PathLike | None = None, stop_after: int | None = None,
            on_phase_end=None) -> bool:
        """Train to the end (or ``stop_after`` more steps); True when all phases are done.

        ``on_phase_end(trainer, phase)`` is called after the last step of each phase (benchmarks
        score the model there)."""
        done_here = 0
        recent: list[dict] = []
        while (stop_after is None or done_here < stop_after) and self._ensure_phase():
            phase_index = self.phase_index
            record = self.train_step()
            if on_phase_end is not None and self.phase_index != phase_index:
                on_phase_end(self, self.phases[phase_index])
            recent.append(record)
            done_here += 1
            if self.config.log_every and (self.step % self.config.log_every == 0 or self.complete):
                summary = {k: float(np.mean([r[k] for r in recent if k in r])) for k in recent[-1] if k not in ("phase", "scene", "step")}
                summary.update(step=self.step, phase=record["phase"])
                self.history.append(summary)
                log.info("step %d (%s): %s", self.step, record["phase"],
                         ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if k not in ("step", "phase")))
                recent = []
            if checkpoint_path is not None and self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0 \
                    and not self.complete and distributed.is_main():  # one writer; all ranks hold the same state
                atomic_torch_save(self.state_dict(), checkpoint_path)
        return self.complete

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "package_version": __version__,
            "complete": self.complete,
            "mode": self.mode,
            "labels": list(self.labels),
            "params": json.dumps(self.params, sort_keys=True, default=str),
            "model_config": json.dumps(self.model_config.to_dict()),
            "fingerprint": self.fingerprint,
            "scenes": list(self.scenes.names),
            "step": self.step,
            "phase_index": self.phase_index,
            "phase_step": self.phase_step,
            "phases": json.dumps([p.__dict__ for p in self.phases], default=str),
            "student": self.student.state_dict(),
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "predicted": {str(k): _pack(v) for k, v in self.predicted.items()},
            "history": json.dumps(self.history),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("mode") != self.mode:
            raise ValueError(f"checkpoint is for mode {state.get('mode')}, this run is {self.mode}")
        self.student.load_state_dict(state["student"])
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        self.step = int(state["step"])
        self.phase_index = int(state["phase_index"])
        self.phase_step = int(state["phase_step"])
        self.history = json.loads(state.get("history", "[]"))
        self.predicted = {int(k): _unpack(v) for k, v in state.get("predicted", {}).items()}
        self._phase_ready = False
        if not self.complete and self.phase_step > 0:
            self._targets = {}
            self.samples = self._samples(self.phases[self.phase_index])
            self._phase_ready = True
        self.optimizer = self._new_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
