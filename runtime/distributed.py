"""torch.distributed helpers for the runtime (DDP; gloo on CPU is what the tests run).

What the runtime keeps identical on every rank, and how (see docs/runtime.md,
"Distributed training"):

* pruning masks are computed on every rank from the same inputs (DDP keeps
  weights identical and averages gradients before `on_before_optimizer_step`);
  as a safety net they are compared now and then with one small all-reduce of
  mask fingerprints (`start_agree`), and rank 0's masks are broadcast when they
  differ (`pruning/compressor.py`);
* QAT observers: per-tensor min / max all-reduced (MIN / MAX) after every
  optimizer step (`start_min_max`), and every buffer broadcast from rank 0
  before int8 conversion (`quant/sync.py`);
* files and the summary are written by rank 0 only (`is_main_process`).

Every helper is the single-process answer (or does nothing) when
torch.distributed is unavailable, not initialised, or runs one process, so a
plain run pays one cheap check at the call sites that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "Agreement",
    "MinMaxReduction",
    "agree",
    "all_reduce_min_max_",
    "broadcast_object",
    "broadcast_tensors_",
    "is_data_parallel",
    "is_distributed",
    "is_main_process",
    "rank",
    "same_layout",
    "start_agree",
    "start_min_max",
    "unwrap_data_parallel",
    "world_size",
]


def _initialized() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    """torch.distributed is initialised with more than one process."""
    return _initialized() and torch.distributed.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without torch.distributed)."""
    return torch.distributed.get_rank() if _initialized() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if _initialized() else 1


def is_main_process() -> bool:
    """Rank 0, or no torch.distributed: the process that writes files and summaries."""
    return not _initialized() or torch.distributed.get_rank() == 0


def is_data_parallel(module: Any) -> bool:
    """`module` is a `DistributedDataParallel` or `DataParallel` wrapper."""
    return isinstance(module, (nn.parallel.DistributedDataParallel, nn.parallel.DataParallel))


def unwrap_data_parallel(module: nn.Module) -> nn.Module:
    """The module inside (nested) DDP / DataParallel wrappers; `module` itself otherwise."""
    while is_data_parallel(module):
        module = module.module  # type: ignore[assignment]
    return module


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current CUDA device for NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class Agreement:
    """An all-reduce (MAX) of `[values, -values]` in flight, started by `start_agree`;
    `result()` waits and says whether every rank holds the same `values`."""

    def __init__(self, values: torch.Tensor) -> None:
        v = values.reshape(-1).to(device=_comm_device(), dtype=torch.int64)
        self.both = torch.cat([v, -v])
        self.work = torch.distributed.all_reduce(
            self.both, op=torch.distributed.ReduceOp.MAX, async_op=True
        )

    def result(self) -> bool:
        self.work.wait()
        high, neg_low = self.both.split(self.both.numel() // 2)
        return bool(torch.equal(high, -neg_low))


def start_agree(values: torch.Tensor) -> Agreement | None:
    """Start `agree(values)` without waiting for it (None when not distributed)."""
    return Agreement(values) if is_distributed() else None


def agree(values: torch.Tensor) -> bool:
    """Whether every rank holds the same 1-D int64 `values` (same length on every rank).

    One all-reduce (MAX) of `[values, -values]`: the maxima equal the minima
    exactly when every rank has the same vector. Every rank gets the same answer.
    """
    pending = start_agree(values)
    return True if pending is None else pending.result()


class MinMaxReduction:
    """An all-reduce (MIN) of `mins` and `-maxs` in flight, started by `start_min_max`.

    `apply()` waits and writes the results into the tensors (in place); `discard()`
    waits and drops them (the tensors changed since the start). The values are
    copied at the start, so the tensors may change while it is in flight.
    """

    def __init__(self, mins: Sequence[torch.Tensor], maxs: Sequence[torch.Tensor]) -> None:
        self.mins, self.maxs = list(mins), list(maxs)
        device = _comm_device()
        parts = [t.detach().reshape(-1).to(device=device, dtype=torch.float64) for t in mins]
        parts += [t.detach().reshape(-1).to(device=device, dtype=torch.float64).neg() for t in maxs]
        self.flat = torch.cat(parts)
        self.work = torch.distributed.all_reduce(
            self.flat, op=torch.distributed.ReduceOp.MIN, async_op=True
        )

    def apply(self) -> None:
        self.work.wait()
        offset = 0
        with torch.no_grad():
            for sign, group in ((1.0, self.mins), (-1.0, self.maxs)):
                for t in group:
                    n = t.numel()
                    t.copy_((self.flat[offset : offset + n] * sign).view_as(t))
                    offset += n

    def discard(self) -> None:
        self.work.wait()


def start_min_max(
    mins: Sequence[torch.Tensor], maxs: Sequence[torch.Tensor]
) -> MinMaxReduction | None:
    """Start the all-reduce of `all_reduce_min_max_` without waiting for it (None when
    not distributed or nothing to reduce)."""
    if not is_distributed() or not (mins or maxs):
        return None
    return MinMaxReduction(mins, maxs)


def all_reduce_min_max_(mins: Sequence[torch.Tensor], maxs: Sequence[torch.Tensor]) -> None:
    """In place: every tensor of `mins` becomes its elementwise minimum over the ranks,
    every tensor of `maxs` its maximum, in one all-reduce (same shapes on every rank)."""
    reduction = start_min_max(mins, maxs)
    if reduction is not None:
        reduction.apply()


def broadcast_tensors_(tensors: Sequence[torch.Tensor], src: int = 0) -> None:
    """In place: every tensor becomes rank `src`'s (same shapes and dtypes on every rank);
    one broadcast per dtype."""
    if not is_distributed() or not tensors:
        return
    device = _comm_device()
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    with torch.no_grad():
        for dtype, group in by_dtype.items():
            wire = torch.uint8 if dtype == torch.bool else dtype  # gloo has no bool
            flat = torch.cat([t.detach().reshape(-1).to(device=device, dtype=wire) for t in group])
            torch.distributed.broadcast(flat, src=src)
            offset = 0
            for t in group:
                n = t.numel()
                t.copy_(flat[offset : offset + n].view(t.shape).to(dtype))
                offset += n


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (pickled; tensors should be on the CPU)."""
    if not is_distributed():
        return obj
    box = [obj if rank() == src else None]
    device = _comm_device() if torch.distributed.get_backend() == "nccl" else None
    torch.distributed.broadcast_object_list(box, src=src, device=device)
    return box[0]


def same_layout(named: Sequence[tuple[str, torch.Tensor]]) -> list[bool]:
    """For each (name, tensor): whether every rank has that name at that position with
    the same shape and dtype (one all-gather of the layout, for one-off syncs)."""
    layout = [(name, tuple(t.shape), str(t.dtype)) for name, t in named]
    if not is_distributed():
        return [True] * len(layout)
    gathered: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(gathered, layout)
    return [
        all(i < len(other) and other[i] == entry for other in gathered)
        for i, entry in enumerate(layout)
    ]
