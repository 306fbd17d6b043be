"""Data parallelism for decomposition training, launched by `torchrun` (NCCL on GPU, gloo on CPU).

Every rank holds the same components and CI function and trains on its own batches with its own
masks and adversary. Parameters stay identical because each optimiser step follows one all-reduce
that averages the gradients over the ranks, as DistributedDataParallel does (we do it explicitly: the
forward runs through a frozen HF model with hooks, several passes per step, which DDP's wrapper does
not fit). With one process, or no process group, every function here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch import Tensor
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; the defaults describe a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def seed(self, base: int) -> int:
        """base·world_size + rank: a different stream per rank, and `base` itself with one process."""
        return base * self.world_size + self.rank

    @classmethod
    def from_env(cls) -> DistInfo:
        """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def active() -> bool:
    """True inside an initialised process group of more than one rank."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def current() -> DistInfo:
    """The initialised process group's ranks, or a single process."""
    if not active():
        return DistInfo()
    return DistInfo(tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def is_main() -> bool:
    return current().is_main


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the torchrun job (once; later calls return the same info), or a single process without torchrun.

    Backend: NCCL for cuda, gloo for cpu. On cuda each rank uses the GPU of its LOCAL_RANK.
    """
    info = DistInfo.from_env()
    if info.world_size == 1:
        return info
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return current()


def _comm_device() -> torch.device:
    """Where small host values must go for a collective: the current GPU under NCCL, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if tdist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_mean_(tensors: list[Tensor]) -> None:
    """Average `tensors` over the ranks, in place, with one all-reduce per dtype (one bucket in practice)."""
    if not active() or not tensors:
        return
    world = tdist.get_world_size()
    groups: dict[tuple, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = _flatten_dense_tensors(group)
        tdist.all_reduce(flat)
        flat.div_(world)
        for t, synced in zip(group, _unflatten_dense_tensors(flat, group)):
            t.copy_(synced)


def average_gradients_(params: list[torch.nn.Parameter]) -> None:
    """Data parallel: gradients averaged by one all-reduce per step, as DDP does. Call after backward, before clipping.

    A parameter without a gradient on this rank counts as a zero gradient, so every rank reduces the same bucket.
    """
    if not active():
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    all_reduce_mean_([p.grad for p in params if p.grad is not None])


def broadcast_(tensors: Sequence[Tensor], src: int = 0) -> None:
    """Overwrite `tensors` on every rank with rank `src`'s values, in place."""
    if not active():
        return
    with torch.no_grad():
        for t in tensors:
            tdist.broadcast(t, src)


def reduce_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Mean of every value over the ranks (the same keys on every rank); unchanged with one process."""
    if not active():
        return metrics
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    tdist.all_reduce(values)
    values /= tdist.get_world_size()
    reduced = dict(zip(keys, values.tolist()))
    return {k: reduced[k] for k in metrics}


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's `obj` (tensors moved to the CPU), as a list on rank 0 and None elsewhere.

    Objects travel pickled between our own processes, in memory only; nothing is pickled to disk.
    """
    if not active():
        return [obj]
    obj = torch.utils._pytree.tree_map(lambda x: x.detach().cpu() if isinstance(x, Tensor) else x, obj)
    out: list[Any] | None = [None] * tdist.get_world_size() if tdist.get_rank() == 0 else None
    tdist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (a small picklable value, e.g. a path)."""
    if not active():
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src)
    return box[0]


def barrier() -> None:
    if active():
        tdist.barrier()
