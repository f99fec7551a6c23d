"""`optimizer_step_hooks`: the optimizer hooks of a manager inside `optimizer.step()`."""

from __future__ import annotations

import pytest
import torch

from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.integrations.hooks import optimizer_step_hooks
from neural_coder.runtime.training import prepare_compression


def test_optimizer_step_hooks_fire_inside_a_step_only():
    model = torch.nn.Linear(8, 8)
    cm = prepare_compression(
        model, WeightPruningConfig(target_sparsity=0.5, start_step=0, end_step=0)
    )
    calls = []
    cm.callbacks.on_before_optimizer_step = lambda: calls.append("before")
    cm.callbacks.on_after_optimizer_step = lambda: calls.append("after")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    hooks = optimizer_step_hooks(optimizer, cm)
    model(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    hooks.remove()
    optimizer.step()  # removed: no hook
    assert calls == ["before", "after"]
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        optimizer_step_hooks(object(), cm)


class _Loaded(torch.nn.Linear):
    is_loaded_in_4bit = True


class _Adapted(torch.nn.Linear):
    peft_config = {"default": object()}


def test_prepare_on_refuses_weights_it_cannot_compress():
    from neural_coder.runtime.config import QuantizationAwareTrainingConfig
    from neural_coder.runtime.integrations.hooks import TrainerCompressionError, prepare_on

    pruning = WeightPruningConfig(target_sparsity=0.5, start_step=0, end_step=0)
    with pytest.raises(TrainerCompressionError, match="4 or 8 bits"):
        prepare_on(_Loaded(4, 4), [pruning])
    with pytest.raises(TrainerCompressionError, match="PEFT adapters"):
        prepare_on(_Adapted(4, 4), QuantizationAwareTrainingConfig())
    model = torch.nn.Linear(4, 4)
    assert prepare_on(model, pruning).model.model is model
