"""`cm.track_copy(copy)` under quantization-aware training: a moving average built from
the prepared (fake-quant) model is converted to int8 with the model at `on_train_end`
and put back where its holder keeps it (`ema.ema`, `model_ema.module`), or handed back
by `cm.converted_copy` for a bare copy; its checkpoints reload through `structure_for`."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from neural_coder.runtime.config import (
    DistillationConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.loading import structure_for
from neural_coder.runtime.training import prepare_compression


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


class StateDictEMA:
    """Averages every floating entry of the state dict (YOLOv5's style)."""

    def __init__(self, model: nn.Module, decay: float = 0.9) -> None:
        self.ema = copy.deepcopy(model).eval()
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        theirs = model.state_dict()
        for key, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(self.decay).add_(theirs[key].detach(), alpha=1 - self.decay)


def _quantized(module: nn.Module) -> int:
    return sum(isinstance(m, torch.ao.nn.quantized.Linear) for m in module.modules())


def _train(confs, make_copy, update, steps: int = 6):
    torch.manual_seed(0)
    model = _net()
    cm = prepare_compression(model, confs)
    cm.callbacks.on_train_begin()
    model = cm.model
    held = make_copy(model)
    cm.track_copy(held)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        cm.callbacks.on_step_begin(step)
        loss = nn.functional.cross_entropy(model(torch.randn(8, 6)), torch.randint(0, 3, (8,)))
        optimizer.zero_grad()
        loss.backward()
        cm.callbacks.on_before_optimizer_step()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
        cm.callbacks.on_step_end()
        update(held, model)
    return cm, model, held


def test_a_holder_keeping_the_copy_as_an_attribute_gets_the_int8_module_back() -> None:
    cm, model, ema = _train(
        QuantizationAwareTrainingConfig(), StateDictEMA, lambda e, m: e.update(m)
    )
    checkpoint = copy.deepcopy(ema.ema.state_dict())  # saved during training: fake-quant
    halved = copy.deepcopy(ema.ema).half().state_dict()  # YOLOv5's way
    cm.callbacks.on_train_end()
    assert _quantized(ema.ema) == 2
    assert cm.converted_copy(ema) is ema
    x = torch.randn(4, 6)
    assert ema.ema(x).shape == (4, 3)
    saved = ema.ema.state_dict()
    for state in (saved, checkpoint, halved):
        loaded, weights = structure_for(state, _net())
        loaded.load_state_dict(weights)
        assert _quantized(loaded) == 2
        assert loaded(x).shape == (4, 3)


def test_averaged_model_that_averages_parameters_only_takes_the_models_ranges() -> None:
    make = lambda m: AveragedModel(m, multi_avg_fn=get_ema_multi_avg_fn(0.9))  # noqa: E731
    cm, model, swa = _train(
        QuantizationAwareTrainingConfig(), make, lambda s, m: s.update_parameters(m)
    )
    cm.callbacks.on_train_end()
    assert _quantized(swa.module) == 2
    x = torch.randn(64, 6)
    # never run, its activation ranges were the model's: close to the int8 model
    assert torch.allclose(swa(x), cm.model(x), atol=0.5)


def test_a_bare_copy_is_handed_back_by_converted_copy() -> None:
    def update(e: nn.Module, m: nn.Module) -> None:
        with torch.no_grad():
            for a, b in zip(e.parameters(), m.parameters()):
                a.lerp_(b, 0.1)

    cm, model, ema = _train(QuantizationAwareTrainingConfig(), copy.deepcopy, update)
    with pytest.raises(RuntimeError, match="before on_train_end"):
        cm.converted_copy(ema)
    cm.callbacks.on_train_end()
    int8 = cm.converted_copy(ema)
    assert _quantized(int8) == 2
    assert int8(torch.randn(2, 6)).shape == (2, 3)


def test_pruning_and_qat_leave_the_copy_sparse_and_int8() -> None:
    pruning = WeightPruningConfig(target_sparsity=0.5, start_step=0, end_step=4)
    cm, model, ema = _train(
        [pruning, QuantizationAwareTrainingConfig()], StateDictEMA, lambda e, m: e.update(m)
    )
    cm.callbacks.on_train_end()
    assert _quantized(ema.ema) == 2
    weight = dict(ema.ema.named_modules())["0"].weight().dequantize()
    assert (weight == 0).float().mean() >= 0.4


def test_a_copy_built_before_preparation_is_refused() -> None:
    cm = prepare_compression(_net(), QuantizationAwareTrainingConfig())
    with pytest.raises(ValueError, match="after prepare_compression"):
        cm.track_copy(StateDictEMA(_net()))


def test_a_manager_without_pruning_or_qat_says_the_copy_is_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cm = prepare_compression(_net(), DistillationConfig(teacher_model=_net()))
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        cm.track_copy(StateDictEMA(_net()))
    assert "no pruning or quantization-aware training config" in caplog.text


class ShadowEMA(nn.Module):
    """A script's own averaging module, keeping the copy under a name of its own."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.shadow = copy.deepcopy(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shadow(x)


def _train_in_place(make_copy):
    torch.manual_seed(0)
    model = _net()
    cm = prepare_compression(model, QuantizationAwareTrainingConfig(), in_place=True)
    cm.callbacks.on_train_begin()  # the eager path: the layers themselves are QAT modules
    held = make_copy(model)
    cm.track_copy(held)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(4):
        cm.callbacks.on_step_begin(step)
        nn.functional.cross_entropy(model(torch.randn(8, 6)), torch.randint(0, 3, (8,))).backward()
        optimizer.step()
        cm.callbacks.on_step_end()
    cm.callbacks.on_train_end()
    return cm, held


def test_a_bare_copy_of_an_eager_model_is_converted_whole_not_its_first_layer() -> None:
    cm, ema = _train_in_place(copy.deepcopy)
    int8 = cm.converted_copy(ema)
    assert _quantized(int8) == 2
    assert int8(torch.randn(2, 6)).shape == (2, 3)


def test_a_scripts_own_averaging_module_gets_the_int8_copy_under_its_name() -> None:
    cm, ema = _train_in_place(ShadowEMA)
    assert cm.converted_copy(ema) is ema
    assert _quantized(ema.shadow) == 2
    assert ema(torch.randn(2, 6)).shape == (2, 3)
