"""Per-step cost of the runtime's torch.distributed synchronisation, side by side.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_distributed_sync.py [--quick]

Two processes (gloo, CPU, one thread each), a model wrapped in DDP and trained
with the hooks, on each rank's own data. In one run, blocks of steps alternate
between the runtime as shipped and the same run with its synchronisation
switched off; the figure is the median over block pairs of on / off wall time
per step (1.00 = free). Wall time, since a collective's cost is mostly waiting.

* QAT: the observer sync (one all-reduce of the per-tensor observers' min / max
  per optimizer step, started after the forward and applied after the optimizer
  step); "not overlapped": started and waited for after the optimizer step.
* pruning, inside the pruning window with masks recomputed at every step: the
  mask check after each change (fingerprints + one all-reduce). Outside the
  window nothing runs.
* single process, no torch.distributed: QAT with the new `on_after_optimizer_step`
  (one `None` check) against the base no-op hook, to show a plain run is unchanged.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817

from neural_coder.runtime.compressor import Compressor
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.pruning import PruningCompressor
from neural_coder.runtime.quant import QATCompressor
from neural_coder.runtime.training import prepare_compression

QUICK = "--quick" in sys.argv
BLOCK, BLOCKS, WARMUP = (10, 9, 10) if QUICK else (10, 41, 20)


def mlp(width: int, inputs: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 10),
    )


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "tiny MLP 16-32-32-10, batch 16": (lambda: mlp(32, 16), (16, 16)),
    "MLP 256-512-512-10, batch 64": (lambda: mlp(512, 256), (64, 256)),
    "CNN 3-16-32 on 16x16, batch 32": (cnn, (32, 3, 16, 16)),
}


class Loop:
    """One DDP model trained with the hooks; `steps(n)` runs n steps."""

    def __init__(
        self, factory: Callable[[], nn.Module], shape: tuple[int, ...], confs: Any, rank: int
    ):
        torch.manual_seed(0)
        model = factory()
        self.cm = prepare_compression(model, confs)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.cm.callbacks.on_train_begin()
        self.model = DDP(self.cm.model) if dist.is_initialized() else self.cm.model
        g = torch.Generator().manual_seed(rank)
        self.batches = [
            (torch.randn(*shape, generator=g), torch.randint(0, 10, (shape[0],), generator=g))
            for _ in range(8)
        ]
        self.step = 0

    def steps(self, n: int) -> None:
        cb, loss_fn = self.cm.callbacks, nn.functional.cross_entropy
        for _ in range(n):
            x, y = self.batches[self.step % len(self.batches)]
            cb.on_step_begin(self.step)
            loss = loss_fn(self.model(x), y)
            loss = cb.on_after_compute_loss(x, None, loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            cb.on_before_optimizer_step()
            self.optimizer.step()
            cb.on_after_optimizer_step()
            cb.on_step_end()
            self.step += 1

    def compressor(self, kind: type) -> Any:
        return next(c for c in self.cm.compressors if isinstance(c, kind))


def side_by_side(loop: Loop, switch: Callable[[bool], None]) -> tuple[float, float, float]:
    """(median on/off ratio, ms per step on, ms per step off) over alternating blocks."""
    loop.steps(WARMUP)
    ratios, on_times, off_times = [], [], []
    for block in range(BLOCKS):
        times = {}
        for on in (True, False) if block % 2 == 0 else (False, True):
            switch(on)
            if dist.is_initialized():
                dist.barrier()
            start = time.perf_counter()
            loop.steps(BLOCK)
            times[on] = (time.perf_counter() - start) / BLOCK
        switch(True)
        ratios.append(times[True] / times[False])
        on_times.append(times[True])
        off_times.append(times[False])
    return (
        statistics.median(ratios),
        statistics.median(on_times) * 1e3,
        statistics.median(off_times) * 1e3,
    )


def qat_switch(loop: Loop, overlap: bool = True) -> Callable[[bool], None]:
    """on: the observer sync as shipped (or, `overlap=False`, started after the optimizer
    step instead of after the forward); off: no sync."""
    qat = loop.compressor(QATCompressor)
    sync = qat.observer_sync
    assert sync is not None, "the observer sync is only built under torch.distributed"
    if not overlap:
        sync.start = lambda: None  # type: ignore[method-assign]

    def switch(on: bool) -> None:
        qat.observer_sync = sync if on else None

    return switch


def pruning_switch(loop: Loop) -> Callable[[bool], None]:
    pruning = loop.compressor(PruningCompressor)
    check = pruning._check_ranks

    def switch(on: bool) -> None:
        pruning._check_ranks = check if on else (lambda: None)  # type: ignore[method-assign]

    return switch


def window_conf() -> WeightPruningConfig:
    # masks recomputed at every step for the whole benchmark
    return WeightPruningConfig(
        target_sparsity=0.9,
        pruning_type="snip_momentum",
        pattern="4x1",
        start_step=1,
        end_step=100_000,
        pruning_frequency=1,
        sparsity_decay_type="linear",
    )


def worker(rank: int, world: int, init: str, report: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    rows = []
    for label, (factory, shape) in MODELS.items():
        loop = Loop(factory, shape, QuantizationAwareTrainingConfig(), rank)
        rows.append(("QAT observer sync", label, *side_by_side(loop, qat_switch(loop))))
        loop = Loop(factory, shape, QuantizationAwareTrainingConfig(), rank)
        switch = qat_switch(loop, overlap=False)
        rows.append(("  same, not overlapped", label, *side_by_side(loop, switch)))
    for label, (factory, shape) in MODELS.items():
        loop = Loop(factory, shape, window_conf(), rank)
        rows.append(
            ("pruning mask check (window)", label, *side_by_side(loop, pruning_switch(loop)))
        )
    dist.destroy_process_group()
    if rank == 0:
        with open(report, "w", encoding="utf-8") as f:
            for row in rows:
                f.write("\t".join(str(v) for v in row) + "\n")


def single_process() -> list[tuple[Any, ...]]:
    """No torch.distributed: QAT's `on_after_optimizer_step` against the base no-op."""
    rows = []
    shipped = QATCompressor.on_after_optimizer_step
    for label, (factory, shape) in MODELS.items():
        loop = Loop(factory, shape, QuantizationAwareTrainingConfig(), 0)

        def switch(on: bool) -> None:
            QATCompressor.on_after_optimizer_step = (  # type: ignore[method-assign]
                shipped if on else Compressor.on_after_optimizer_step
            )

        rows.append(("single process, QAT hook", label, *side_by_side(loop, switch)))
    QATCompressor.on_after_optimizer_step = shipped  # type: ignore[method-assign]
    return rows


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.tsv")
        mp.spawn(worker, args=(2, os.path.join(tmp, "init"), report), nprocs=2, join=True)
        with open(report, encoding="utf-8") as f:
            rows: list[tuple[Any, ...]] = [tuple(line.rstrip("\n").split("\t")) for line in f]
    rows += single_process()
    print(f"{BLOCKS} block pairs of {BLOCK} steps, median on/off wall time per step")
    print(f"{'what':30} {'model':32} {'ratio':>6} {'on ms':>8} {'off ms':>8}")
    for what, model, ratio, on, off in rows:
        print(f"{what:30} {model:32} {float(ratio):6.3f} {float(on):8.3f} {float(off):8.3f}")


if __name__ == "__main__":
    main()
