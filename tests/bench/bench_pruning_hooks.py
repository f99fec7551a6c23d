"""Step-time overhead of the pruning hooks, against the same loop without them.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_pruning_hooks.py [--quick] [--inc]
With --inc, the same table for Intel Neural Compressor 2.6's hooks follows, from this file
run again under $NEURAL_CODER_INC_PYTHON (else .venv-inc/bin/python; tests/inc/README.md)
with --as-inc: same models, loop and configs ("hooks only" and "mask multiply alone" are ours alone).

Two small models (an MLP with a few thousand weights per layer, a small CNN),
each trained with the canonical loop (spec 1.7) bare and with a
`WeightPruningConfig` through `prepare_compression`. Bare and hooked loops run
in adjacent blocks in one process, timed in thread CPU time (torch runs on one
thread here, so time spent descheduled on a shared machine does not count; the
wall clock where the CPU-time clock ticks coarsely); the figure is the median
over block pairs of hooked / bare (1.00 = no overhead), with the quartiles of those
pair ratios (their spread is the noise of the figure).

* "steady": after the pruning window has closed (masks fixed): what every later
  step of a run costs. The target is <= 1.05.
* "window": inside an iterative window (snip_momentum scores every step, masks
  recomputed every `FREQ` steps), for information.
* "as rewritten": the manager's hooks around the script's own module, which is what
  `neural-coder optimize --approach pruning` writes (it does not route the forward
  through `cm.model`).
* "hooks only": the same steady-state hooks called on the compressor itself,
  without the manager's dispatch and the `cm.model` wrapper's forward, to show
  what pruning itself costs.
* "mask multiply alone": no hook at all, only the multiply of the masked weights by
  their masks after each optimizer step (`multiply_masks` on the compressor's own
  lists): the work any pruner must do to keep pruned weights at zero. The rows
  above minus this one are what the hooks cost beyond it.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

AS_INC = "--as-inc" in sys.argv
if AS_INC:
    from neural_compressor.training import WeightPruningConfig, prepare_compression

    logging.disable(logging.WARNING)  # INC logs every step at INFO
else:
    from neural_coder.runtime.config import WeightPruningConfig
    from neural_coder.runtime.pruning.masking import multiply_masks
    from neural_coder.runtime.training import prepare_compression

torch.set_num_threads(1)
BLOCK, BLOCKS, FREQ = 20, 41, 10
QUICK = "--quick" in sys.argv
ROOT = Path(__file__).resolve().parents[2]
if QUICK:
    BLOCKS = 11


class MLP(nn.Module):
    """64 -> 64 -> 64 -> 64 -> 10: ~4k weights per hidden layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.head(torch.relu(self.fc3(x)))


class CNN(nn.Module):
    """3x16x16 images: conv 3->16->32->32, pooling, linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.conv3(x))
        return self.head(x.mean(dim=(2, 3)))


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int]] = {
    "MLP 64-64-64-64-10, batch 32": (MLP, (64,), 32),
    "CNN 4x16x16 conv16-32-32, batch 16": (CNN, (4, 16, 16), 16),
}


def make_loop(
    factory: Callable[[], nn.Module],
    in_shape: tuple[int, ...],
    batch: int,
    conf: Any,
    warm_steps: int = 0,
    direct: bool | str = False,
) -> Callable[[], None]:
    torch.manual_seed(0)
    model = factory()
    x, y = torch.randn(batch, *in_shape), torch.randint(0, 10, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    hooks = None
    if conf is not None:
        cm = prepare_compression(model, conf)
        cm.callbacks.on_train_begin()
        if direct is False:  # the manager's wrapper (INC's loop: model = cm.model)
            model = cm.model
        # True: the compressor's hooks alone; "callbacks": the manager's hooks on the
        # script's own module, as neural-coder's pruning rewrites call them; "masks": the
        # hooks only until the masks are fixed, then the multiply alone
        hooks = cm.compressors[0] if direct in (True, "masks") else cm.callbacks
    step = 0
    masks_only = False

    def one_step() -> None:
        nonlocal step
        if masks_only:
            out = model(x)
            loss = loss_fn(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # the compressor's own lists of masked weights and masks (private: a bench)
            multiply_masks(hooks._apply_params, hooks._apply_masks)
            return
        if hooks is not None:
            hooks.on_step_begin(step)
        out = model(x)
        loss = loss_fn(out, y)
        if hooks is not None and direct != "callbacks":  # pruning rewrites do not call it
            # INC returns [] where no compressor changes the loss (quirk 9.1); not
            # `... or loss`, which reads the tensor's value (a host sync on a GPU)
            changed = hooks.on_after_compute_loss(x, out, loss)
            if isinstance(changed, torch.Tensor):
                loss = changed
        optimizer.zero_grad()
        loss.backward()
        if hooks is not None:
            hooks.on_before_optimizer_step()
        optimizer.step()
        if hooks is not None:
            hooks.on_after_optimizer_step()
            hooks.on_step_end()
        step += 1

    for _ in range(warm_steps):
        one_step()
    masks_only = direct == "masks"
    return one_step


def _granularity(clock: Callable[[], float]) -> float:
    steps = []
    for _ in range(50):
        a = b = clock()
        while b == a:
            b = clock()
        steps.append(b - a)
    return statistics.median(steps)


# thread CPU time, so time spent descheduled on a shared machine does not count; where
# that clock ticks coarsely (some VMs: milliseconds), the wall clock
CLOCK = time.thread_time if _granularity(time.thread_time) < 1e-5 else time.perf_counter


def block_time(step_fn: Callable[[], None]) -> float:
    """Time per step over one block (torch runs single-threaded here)."""
    start = CLOCK()
    for _ in range(BLOCK):
        step_fn()
    return (CLOCK() - start) / BLOCK


def ratio(
    bare: Callable[[], None], hooked: Callable[[], None]
) -> tuple[float, float, float, float]:
    """(median, first quartile, third quartile) over adjacent (bare, hooked) block pairs
    of hooked / bare, and the median bare step time."""
    for fn in (bare, hooked):  # warm up
        block_time(fn)
    ratios, bare_times = [], []
    for i in range(BLOCKS):
        first, second = (bare, hooked) if i % 2 == 0 else (hooked, bare)
        t1, t2 = block_time(first), block_time(second)
        b, h = (t1, t2) if first is bare else (t2, t1)
        ratios.append(h / b)
        bare_times.append(b)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q1, q3, statistics.median(bare_times)


def configs() -> dict[str, tuple[Any, int, bool | str]]:
    steady_end = 20
    return {
        "steady, snip_momentum 4x1 global": (
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                start_step=1,
                end_step=steady_end,
            ),
            steady_end + 2,
            False,
        ),
        "steady, magnitude 2:4": (
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="2:4",
                pruning_type="magnitude",
                start_step=0,
                end_step=steady_end,
            ),
            steady_end + 2,
            False,
        ),
        "steady, as rewritten (manager hooks, no wrapper)": (
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                start_step=1,
                end_step=steady_end,
            ),
            steady_end + 2,
            "callbacks",
        ),
        "steady, hooks only (no manager, no wrapper)": (
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                start_step=1,
                end_step=steady_end,
            ),
            steady_end + 2,
            True,
        ),
        "steady, mask multiply alone (no hooks)": (
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                start_step=1,
                end_step=steady_end,
            ),
            steady_end + 2,
            "masks",
        ),
        f"window, snip_momentum 4x1, masks every {FREQ} steps": (
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                start_step=1,
                end_step=1_000_000,
                pruning_frequency=FREQ,
            ),
            2,
            False,
        ),
    }


def run_inc() -> None:
    """This file again under INC's environment, its table printed after ours."""
    python = os.environ.get("NEURAL_CODER_INC_PYTHON") or str(ROOT / ".venv-inc" / "bin" / "python")
    if not Path(python).exists():
        print(f"\nINC: no environment at {python} (see tests/inc/README.md)")
        return
    args = [python, __file__, "--as-inc", *(["--quick"] if QUICK else [])]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    print("\nIntel Neural Compressor 2.6, the same loop:")
    print(done.stdout if done.returncode == 0 else done.stdout + done.stderr[-3000:])


def main() -> None:
    print(
        f"1 thread, clock {CLOCK.__name__}; median over {BLOCKS} adjacent (bare, hooked) pairs of "
        f"{BLOCK}-step blocks of hooked / bare [quartiles]"
    )
    for label, (factory, shape, batch) in MODELS.items():
        print(f"\n{label}")
        for name, (conf, warm, direct) in configs().items():
            if direct in (True, "masks") and AS_INC:
                continue
            bare = make_loop(factory, shape, batch, None)
            hooked = make_loop(factory, shape, batch, conf, warm, direct)
            r, q1, q3, b = ratio(bare, hooked)
            print(f"  {name:<52} {r:6.3f} [{q1:.3f}-{q3:.3f}]   (bare step {b * 1e6:7.1f} us)")
    if "--inc" in sys.argv:
        run_inc()


if __name__ == "__main__":
    main()
