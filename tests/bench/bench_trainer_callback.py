"""Per-step overhead of `CompressionCallback` with pruning on a tiny BERT, against a plain Trainer.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_trainer_callback.py [--quick]

The tiny BERT of tests/runtime/hf_models.py (vocab 100, hidden 32, 2 layers,
batch 16 x 16 tokens) is trained by `transformers.Trainer` on one thread, with
what `neural-coder` generates for pruning: `CompressionCallback(prepare_compression(
model, WeightPruningConfig(snip_momentum, 4x1, global, 50 %, steps 1 .. END)))`.
A timing callback, registered last, stamps the thread CPU time at every
`on_step_end`, so each interval holds exactly one step with all of our hooks
(time spent descheduled on a shared machine does not count).

* steady (after the pruning window, masks fixed: what every later step costs):
  measured inside one run. From END + 2 on, the callback is switched off for
  every other block of `BLOCK` steps (the Trainer still calls it; it returns at
  once), so hooked and bare steps alternate in the same process, model and data
  stream. Figure: median hooked step / median bare step, median over rounds.
* window (steps 2 .. END, scores every step and masks recomputed): a pruning run
  against a plain run (no callback) of the same length, adjacent in each round,
  order alternating. Figure: median over rounds of the ratio of median step times.
* dispatch: the same as window for a callback on a manager whose hooks do nothing
  (what the Trainer's call of our callback costs).

1.00 = no overhead.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from hf_models import RandomTextDataset, tiny_bert, training_args  # noqa: E402

from neural_coder.runtime.config import WeightPruningConfig  # noqa: E402
from neural_coder.runtime.integrations.hooks import INC_HOOKS  # noqa: E402
from neural_coder.runtime.integrations.transformers import CompressionCallback  # noqa: E402
from neural_coder.runtime.training import prepare_compression  # noqa: E402

torch.set_num_threads(1)
QUICK = "--quick" in sys.argv
STEPS = 120 if QUICK else 240
ROUNDS = 3 if QUICK else 7
END, BLOCK = 40, 10
DATA = RandomTextDataset(16 * STEPS)


class Gate(TrainerCallback):
    """Forwards the step events to `inner` only while `enabled`."""

    def __init__(self, inner: TrainerCallback) -> None:
        self.inner = inner
        self.enabled = True

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_") and name not in ("on_train_begin", "on_train_end"):
            if not object.__getattribute__(self, "enabled"):
                return lambda *args, **kwargs: None
            return getattr(object.__getattribute__(self, "inner"), name)
        return object.__getattribute__(self, name)


class StepClock(TrainerCallback):
    """Stamps every step end; switches `gate` off for every other block after the window."""

    def __init__(self, gate: Gate | None) -> None:
        self.stamps: list[float] = []
        self.hooked: list[bool] = []
        self.gate = gate

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stamps.append(time.thread_time())
        self.hooked.append(self.gate is not None and self.gate.enabled)
        if self.gate is not None and state.global_step >= END + 2:
            self.gate.enabled = (state.global_step // BLOCK) % 2 == 0


class NoOpManager:
    """INC's hook names, doing nothing: measures the callback dispatch alone."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = type("Wrapper", (), {"model": model})()
        self.callbacks = self
        for name in INC_HOOKS:
            setattr(self, name, lambda *args, **kwargs: None)


def run(variant: str, out: str) -> tuple[list[float], list[bool]]:
    """Step times and whether each step ran our hooks (the interval i is step i + 1)."""
    model = tiny_bert(dropout=0.0)
    gate: Gate | None = None
    if variant == "dispatch":
        gate = Gate(CompressionCallback(NoOpManager(model)))
    elif variant == "pruning":
        conf = WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=END,
        )
        gate = Gate(CompressionCallback(prepare_compression(model, conf)))
    clock = StepClock(gate if variant == "pruning" else None)
    trainer = Trainer(
        model=model,
        args=training_args(out, max_steps=STEPS),
        train_dataset=DATA,
        callbacks=[*([gate] if gate else []), clock],
    )
    trainer.train()
    stamps = clock.stamps
    return [b - a for a, b in zip(stamps, stamps[1:])], clock.hooked[1:]


def main() -> None:
    import logging

    logging.getLogger("neural_coder").setLevel(logging.WARNING)
    logging.getLogger("transformers").setLevel(logging.WARNING)
    variants = ["plain", "dispatch", "pruning"]
    window: dict[str, list[float]] = {v: [] for v in variants}
    steady: list[float] = []
    plain_step: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        run("plain", out)  # warm-up: imports, allocator, first-call costs
        for r in range(ROUNDS):
            order = variants if r % 2 == 0 else variants[::-1]
            for variant in order:
                steps, hooked = run(variant, out)
                window[variant].append(statistics.median(steps[1 : END - 1]))
                if variant == "plain":
                    plain_step.append(statistics.median(steps))
                if variant == "pruning":
                    after = range(END + 2, len(steps))
                    on = [steps[i] for i in after if hooked[i]]
                    off = [steps[i] for i in after if not hooked[i]]
                    steady.append(statistics.median(on) / statistics.median(off))
    print(f"tiny BERT, Trainer, {STEPS} steps x {ROUNDS} rounds, one thread (thread CPU time)")
    print(f"plain step: {1e3 * statistics.median(plain_step):.2f} ms")

    def show(label: str, ratios: list[float]) -> None:
        rounds = ", ".join(f"{x:.3f}" for x in ratios)
        print(f"{label:<34} {statistics.median(ratios):.3f}  (rounds: {rounds})")

    show("pruning, steady (same run)", steady)
    for variant in ("pruning", "dispatch"):
        ratios = [v / p for v, p in zip(window[variant], window["plain"])]
        show(f"{variant}, window (vs a plain run)", ratios)


if __name__ == "__main__":
    main()
