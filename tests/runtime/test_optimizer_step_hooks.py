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
