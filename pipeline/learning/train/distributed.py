"""Data-parallel training helpers: ranks from torchrun's environment, the process group, and the
split of a step's global batch over ranks.

``torchrun --standalone --nproc_per_node=N -m pipeline train ...`` starts N copies of the
command with RANK, LOCAL_RANK and WORLD_SIZE set; each one is a rank. Every rank holds the same
scenes and walks the same sample order; a step's global batch of G samples is cut into W
contiguous shards of G / W, each rank computes its shard's gradients and the ranks
average them (``average_gradients``). With each sample's loss divided by G / W (the rank's
share), that average is the mean over the global batch: the gradient a single process gets from
the same G samples.

Without a process group (one process), every helper here is the identity: rank 0 of 1.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def env_world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) set by torchrun; (0, 0, 1) for a plain process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"torchrun environment is malformed (RANK / LOCAL_RANK / WORLD_SIZE): {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"torchrun environment is inconsistent: RANK={rank}, WORLD_SIZE={world}")
    return rank, local_rank, world


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the one that writes checkpoints, the output and the log."""
    return rank() == 0


def rank_device(device: str, local_rank: int, world: int) -> str:
    """The device string of one rank: each rank takes the GPU of its local rank.

    With several ranks, ``cuda:N`` is refused: every rank would share GPU N."""
    device = str(device)
    if world <= 1:
        return device
    if device == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return f"cuda:{local_rank}"
    if device.startswith("cuda:"):
        raise ValueError(f"train.device {device!r} names one GPU, but {world} ranks would share it; use auto or "
                         "cuda (rank r takes cuda:<local rank>)")
    return device


def init(device: str = "auto", timeout_minutes: float = 30.0) -> bool:
    """Join the process group when started by torchrun with WORLD_SIZE > 1 (nccl on CUDA, else
    gloo); True when distributed. A no-op in a plain process or when already joined."""
    rank_, local_rank, world = env_world()
    if world == 1 or active():
        return active()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    resolved = rank_device(device, local_rank, world)
    cuda = resolved.startswith("cuda")
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"rank {rank_} wants cuda:{local_rank} but only {torch.cuda.device_count()} GPU(s) "
                               "are visible; start fewer processes (train.devices) or request more GPUs")
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=timeout_minutes))
    if rank_ != 0:  # one log: rank 0 speaks for all, the others only warn
        logging.getLogger().setLevel(logging.WARNING)
    log.info("distributed training: %d ranks, backend %s", world, dist.get_backend())
    return True


def destroy() -> None:
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def global_batch(batch_size: int | None, world: int) -> int:
    """Samples per optimizer step over all ranks: ``batch_size`` (None: one per rank)."""
    global_size = world if batch_size is None else int(batch_size)
    if global_size < 1:
        raise ValueError(f"train.batch_size must be >= 1, got {batch_size}")
    if global_size % world:
        raise ValueError(f"train.batch_size {global_size} does not split over {world} ranks (train.devices); "
                         "use a multiple of the number of devices")
    return global_size


def shard(items: list, rank_: int, world: int) -> list:
    """Rank ``rank_``'s contiguous share of a global batch (its length must divide by ``world``)."""
    if len(items) % world:
        raise ValueError(f"a batch of {len(items)} does not split over {world} ranks")
    per_rank = len(items) // world
    return items[rank_ * per_rank:(rank_ + 1) * per_rank]


def strided(n: int, rank_: int, world: int) -> range:
    """Indices 0..n-1 owned by ``rank_`` for work split unevenly (self-training predictions)."""
    return range(rank_, n, world)


def all_gather_objects(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order; [obj] without a process group."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def merged_dicts(local: dict) -> dict:
    """The union of every rank's dict (their keys must not overlap), sorted by key."""
    merged: dict = {}
    for part in all_gather_objects(local):
        overlap = set(merged) & set(part)
        if overlap:
            raise RuntimeError(f"ranks computed the same keys twice: {sorted(overlap)[:5]}")
        merged.update(part)
    return dict(sorted(merged.items()))  # key order as one process would build it


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Every rank takes rank 0's parameters and buffers (they are seeded alike; this makes sure)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


@torch.no_grad()
def average_gradients(parameters) -> None:
    """Replace each gradient by its mean over the ranks (one all-reduce per dtype).

    Done by hand rather than by DistributedDataParallel: DDP's reducer needs every parameter
    that the forward outputs depend on to receive a gradient (or the same unused set every
    step), and here which outputs the losses use depends on the config and the data (the last
    layer's query offsets feed only the query loss). A parameter without a gradient on some
    rank counts as zero there; one without a gradient on every rank keeps none, so AdamW skips
    it exactly as it does in one process."""
    world = world_size()
    if world == 1:
        return
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        return
    device = parameters[0].device
    has_grad = torch.tensor([p.grad is not None for p in parameters], dtype=torch.int32, device=device)
    dist.all_reduce(has_grad)
    by_dtype: dict = {}
    for p, count in zip(parameters, has_grad.tolist()):
        if count:
            by_dtype.setdefault(p.dtype, []).append(p)
    for dtype, group in by_dtype.items():
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in group])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for p in group:
            n = p.numel()
            mean = flat[offset:offset + n].view_as(p)
            if p.grad is None:
                p.grad = mean.clone()
            else:
                p.grad.copy_(mean)
            offset += n


def torchrun_command(nproc: int, args: list[str]) -> list[str]:
    """``torchrun --standalone --nproc_per_node=N -m pipeline <args>`` with this interpreter
    (``python -m torch.distributed.run`` is torchrun; no PATH lookup). --standalone: one node, a
    free local rendezvous port, so two jobs on one machine do not meet."""
    import sys

    if int(nproc) < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={int(nproc)}",
            "-m", "pipeline", *args]
