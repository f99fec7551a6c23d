"""Drive a compression manager through `TrainerHooks` in the Hugging Face Trainer's event order.

    python hf_inc_hooks.py inc|runtime

INC's environment has no transformers, so this replays the Trainer's events
(transformers 5.23's order, see runtime/integrations/hooks.py: gradient
accumulation of 2, the optimizer built before on_train_begin) on a small MLP
instead of running a Trainer. Prints one JSON line: the INC hook names missing
from the manager's callbacks, the per-layer sparsity after pruning, the sparsity
of fc2 after every step of a run whose schedule `prune_until` fitted, and what
happened with QAT (INC's FX QAT replaces the module, which must be refused).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch
from torch import nn

from neural_coder.runtime.integrations.hooks import INC_HOOKS, TrainerCompressionError, TrainerHooks

STEPS, ACCUMULATION = 8, 2


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 64)
        self.head = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def sparsity(model: nn.Module) -> dict[str, float]:
    return {
        name: round(float((getattr(model, name).weight == 0).float().mean()), 4)
        for name in ("fc1", "fc2", "head")
    }


def trainer_events(hooks: TrainerHooks, model: nn.Module, trace: list[float] | None = None) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    hooks.train_begin(model, None, max_steps=STEPS)
    hooks.epoch_begin(0.0)
    for step in range(STEPS):
        hooks.step_begin(step)
        for _ in range(ACCUMULATION):
            x, y = torch.randn(8, 32, generator=g), torch.randint(0, 4, (8,), generator=g)
            (nn.functional.cross_entropy(model(x), y) / ACCUMULATION).backward()
        hooks.before_optimizer_step()
        optimizer.step()
        hooks.after_optimizer_step()
        optimizer.zero_grad()
        hooks.step_end()
        if trace is not None:
            trace.append(sparsity(model)["fc2"])
    hooks.epoch_end()
    hooks.train_end()


def main(target: str) -> dict[str, Any]:
    if target == "inc":
        from neural_compressor.config import QuantizationAwareTrainingConfig, WeightPruningConfig
        from neural_compressor.training import CallBacks, prepare_compression
    else:
        from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
        from neural_coder.runtime.training import CallBacks, prepare_compression

    result: dict[str, Any] = {
        "missing_hooks": [n for n in INC_HOOKS if not callable(getattr(CallBacks, n, None))]
    }
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5,
        pattern="4x1",
        pruning_type="magnitude",
        start_step=0,
        end_step=STEPS - 2,
    )
    trainer_events(TrainerHooks(prepare_compression(model, conf)), model)
    result["sparsity"] = sparsity(model)
    # the generated shape for the Trainer: end_step is a placeholder, fitted at train begin
    model, trace = MLP(), []
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=0, end_step=0
    )
    hooks = TrainerHooks(prepare_compression(model, conf), prune_until=0.75)
    trainer_events(hooks, model, trace)
    result["fitted_trace"] = trace
    model = MLP()
    try:
        trainer_events(
            TrainerHooks(prepare_compression(model, QuantizationAwareTrainingConfig())), model
        )
    except TrainerCompressionError as exc:
        result["qat"] = f"refused: {exc}"
    else:
        result["qat"] = "trained in place"
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
