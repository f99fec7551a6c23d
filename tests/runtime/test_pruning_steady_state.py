"""The steady state of pruning (after the window closed): pruned weights stay exactly
zero after every optimizer step whatever the optimizer, the wrapper's forward keeps
nn.Module's hook semantics and reads the int8 marker at every call, and the recipes'
`MaskStore` shares the mask multiply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from neural_coder.runtime import int8_device
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.int8_device import RECIPE_ATTR
from neural_coder.runtime.pruning import PruningCompressor
from neural_coder.runtime.pruning.masking import multiply_masks
from neural_coder.runtime.quant import backend
from neural_coder.runtime.training import prepare_compression


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


OPTIMIZERS: dict[str, Callable[[Any], torch.optim.Optimizer]] = {
    "sgd-momentum-wd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
    "adamw-wd": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("pruning_type", ["snip_momentum", "magnitude"])
@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
def test_pruned_weights_stay_exactly_zero_after_every_step(
    optimizer_name: str, pruning_type: str
) -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type=pruning_type, start_step=1, end_step=4
    )
    cm = prepare_compression(model, conf)
    compressor = cm.compressors[0]
    assert isinstance(compressor, PruningCompressor)
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    cm.callbacks.on_train_begin()
    moved_by_optimizer = 0
    for step in range(12):
        cm.callbacks.on_step_begin(step)
        loss = nn.functional.cross_entropy(cm.model(x), y)
        loss = cm.callbacks.on_after_compute_loss(x, None, loss)
        optimizer.zero_grad()
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        masks = compressor.pruners[0].masks
        if step >= 6:  # steady state: the window closed at step 4
            moved_by_optimizer += sum(
                int((model.get_parameter(f"{n}.weight")[m == 0] != 0).sum())
                for n, m in masks.items()
            )
        cm.callbacks.on_after_optimizer_step()
        cm.callbacks.on_step_end()
        for name, mask in masks.items():
            weight = model.get_parameter(f"{name}.weight")
            assert bool((weight[mask == 0] == 0).all()), (name, step)
    # the optimizer does move pruned weights (momentum, Adam's moments, weight decay):
    # only the mask multiply brings them back to zero
    assert moved_by_optimizer > 0
    pruned = sum(int((m == 0).sum()) for m in compressor.pruners[0].masks.values())
    assert pruned == (16 * 8 + 16 * 16) // 2
    assert compressor.pruners[0].finished


def test_multiply_masks_per_layer_handles_mixed_dtypes() -> None:
    weights = [torch.ones(2, 2, requires_grad=True), torch.ones(2, 2, dtype=torch.float64)]
    masks = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])]
    multiply_masks(weights, masks, per_layer=True)
    assert weights[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert weights[1].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert torch.is_grad_enabled()  # restored
    assert weights[0].grad_fn is None  # not recorded by autograd


def test_wrapper_forward_honours_hooks_registered_on_the_wrapper() -> None:
    model = MLP()
    cm = prepare_compression(model, WeightPruningConfig(target_sparsity=0.5, pattern="4x1"))
    seen: list[str] = []
    pre = cm.model.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = cm.model.register_forward_hook(lambda m, args, out: seen.append("post") or out + 1)
    x = torch.randn(3, 8)
    with torch.no_grad():
        expected = model(torch.zeros(3, 8)) + 1
        assert torch.equal(cm.model(x), expected)
    assert seen == ["post"]
    pre.remove()
    post.remove()
    with torch.no_grad():
        assert torch.equal(cm.model(x), model(x))


def test_wrapper_reads_the_int8_marker_at_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """An inner module that becomes an int8 model after wrapping is bridged from then on."""
    model = MLP()
    cm = prepare_compression(model, WeightPruningConfig(target_sparsity=0.5, pattern="4x1"))
    bridged: list[nn.Module] = []

    def record(inner: nn.Module, args: Any, kwargs: Any) -> Any:
        bridged.append(inner)
        return inner(*args, **kwargs)

    monkeypatch.setattr(int8_device, "call_on_cpu", record)
    x = torch.randn(2, 8)
    cm.model(x)
    assert bridged == []
    object.__setattr__(model, RECIPE_ATTR, {"approach": "static"})
    cm.model(x)
    assert bridged == [model]
    assert backend.RECIPE_ATTR == RECIPE_ATTR  # the old import path still works
