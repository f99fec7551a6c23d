"""Step-time overhead of the training hooks, against the same loop without them.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_hooks.py
Each configuration and the bare loop are timed in alternating blocks in one
process, so machine noise hits both alike; the figure is the ratio of median
step times (1.00 = no overhead). "steady" is measured after the pruning window
has closed (masks fixed); "pruning window" while masks are still updated.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch import nn

from neural_coder.runtime.config import (
    DistillationConfig,
    KnowledgeDistillationLossConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(0)
torch.set_num_threads(1)
WIDTH, BATCH, BLOCK, BLOCKS = 512, 64, 20, 15


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(256, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10)
    )


def make_loop(confs: list | None, prune_window: int = 0):
    model = make_model()
    x, y = torch.randn(BATCH, 256), torch.randint(0, 10, (BATCH,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    cm = None
    if confs is not None:
        cm = prepare_compression(model, confs(model) if callable(confs) else confs)
        cm.callbacks.on_train_begin()
        model = cm.model
    step = 0

    def one_step() -> None:
        nonlocal step
        if cm is not None:
            cm.callbacks.on_step_begin(step)
        out = model(x)
        loss = loss_fn(out, y)
        if cm is not None:
            loss = cm.callbacks.on_after_compute_loss(x, out, loss)
        optimizer.zero_grad()
        loss.backward()
        if cm is not None:
            cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        if cm is not None:
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
        step += 1

    for _ in range(prune_window):  # run through the pruning window first: steady state
        one_step()
    return one_step


def block_time(step_fn) -> float:
    start = time.perf_counter()
    for _ in range(BLOCK):
        step_fn()
    return (time.perf_counter() - start) / BLOCK


def ratio(config_fn, window: int = 0) -> float:
    bare, hooked = make_loop(None), make_loop(config_fn, window)
    for fn in (bare, hooked):  # warm up
        block_time(fn)
    bare_times, hooked_times = [], []
    for _ in range(BLOCKS):
        bare_times.append(block_time(bare))
        hooked_times.append(block_time(hooked))
    return statistics.median(hooked_times) / statistics.median(bare_times)


def pruning(start: int, end: int):
    return [
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            start_step=start,
            end_step=end,
        )
    ]


CASES = {
    "pruning snip_momentum 4x1, steady (after end_step)": (pruning(1, 10), 12),
    "pruning snip_momentum 4x1, pruning window (every step)": (pruning(1, 10_000), 2),
    "pruning magnitude 1x1, steady": (
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="1x1",
                pruning_type="magnitude",
                start_step=0,
                end_step=5,
            )
        ],
        8,
    ),
    "qat (fake-quant forward included)": ([QuantizationAwareTrainingConfig()], 0),
    "distillation, KD (teacher forward included)": (
        lambda model: [DistillationConfig(copy.deepcopy(model), KnowledgeDistillationLossConfig())],
        0,
    ),
}

if __name__ == "__main__":
    print(
        f"MLP 256-{WIDTH}-{WIDTH}-10, batch {BATCH}, 1 thread; median of {BLOCKS} blocks of {BLOCK} steps"
    )
    print(f"{'configuration':<58} step time ratio (hooked / bare)")
    for label, (confs, window) in CASES.items():
        print(f"{label:<58} {ratio(confs, window):.3f}")
