"""`CompressionManager.track_copy`: a moving average of the model's weights (the copy
YOLOv5, timm and DeiT scripts evaluate and save) is kept as sparse as the pruned model."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.model import Model
from neural_coder.runtime.training import prepare_compression


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class HolderEMA:
    """YOLOv5's style: a plain object, the averaged module at `.ema`, updated through
    the state dict."""

    def __init__(self, model: nn.Module, decay: float = 0.99) -> None:
        self.ema = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model: nn.Module) -> None:
        with torch.no_grad():
            state = model.state_dict()
            for key, value in self.ema.state_dict().items():
                if value.dtype.is_floating_point:
                    value.mul_(self.decay).add_(state[key].detach(), alpha=1 - self.decay)


class ModuleEMA(nn.Module):
    """timm's ModelEmaV2 style: a module holding the copy at `.module`, updated
    parameter by parameter (here in half precision, on request)."""

    def __init__(self, model: nn.Module, decay: float = 0.99, dtype: Any = None) -> None:
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        if dtype is not None:
            self.module.to(dtype)
        self.decay = decay

    def update(self, model: nn.Module) -> None:
        with torch.no_grad():
            for ema_v, v in zip(self.module.state_dict().values(), model.state_dict().values()):
                ema_v.copy_(ema_v * self.decay + (1 - self.decay) * v.to(ema_v.dtype))


class ShadowEMA:
    """diffusers' `EMAModel(model.parameters())` / torch_ema's style: a list of averaged
    tensors in the order of `model.parameters()`, copied into the model at the end."""

    def __init__(self, parameters: Any, decay: float = 0.99) -> None:
        self.shadow_params = [p.clone().detach() for p in parameters]
        self.decay = decay

    def step(self, parameters: Any) -> None:
        with torch.no_grad():
            for s, p in zip(self.shadow_params, parameters):
                s.sub_((1 - self.decay) * (s - p))

    def to(self, dtype: Any) -> None:  # diffusers makes a new list
        self.shadow_params = [p.to(dtype=dtype) for p in self.shadow_params]

    def copy_to(self, parameters: Any) -> None:
        with torch.no_grad():
            for s, p in zip(self.shadow_params, parameters):
                p.copy_(s.to(p.dtype))


def _averaged(ema: Any) -> nn.Module:
    if isinstance(ema, torch.optim.swa_utils.AveragedModel):
        return ema.module
    return ema.ema if isinstance(ema, HolderEMA) else ema.module


def _train(make_ema: Any, track: bool, epochs: int = 3, steps: int = 6) -> tuple[Any, Any, Any]:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pattern="4x1", pruning_type="magnitude", start_step=2, end_step=10
    )
    cm = prepare_compression(model, conf)
    ema = make_ema(model)
    if track:
        cm.track_copy(ema)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    cm.callbacks.on_train_begin()
    for epoch in range(epochs):
        cm.callbacks.on_epoch_begin(epoch)
        for step in range(steps):
            cm.callbacks.on_step_begin(step)
            loss = nn.functional.cross_entropy(cm.model(x), y)
            optimizer.zero_grad()
            loss.backward()
            cm.callbacks.on_before_optimizer_step()
            optimizer.step()
            cm.callbacks.on_after_optimizer_step()
            if isinstance(ema, torch.optim.swa_utils.AveragedModel):
                ema.update_parameters(model)
            elif isinstance(ema, ShadowEMA):
                ema.step(model.parameters())
            else:
                ema.update(model)
            cm.callbacks.on_step_end()
        cm.callbacks.on_epoch_end()
    cm.callbacks.on_train_end()
    return cm, model, ema


EMAS = {
    "yolov5-holder": HolderEMA,
    "timm-module": ModuleEMA,
    "torch-averaged-model": torch.optim.swa_utils.AveragedModel,
}


@pytest.mark.parametrize("kind", sorted(EMAS))
def test_the_averaged_copy_has_the_models_zeros(kind: str) -> None:
    cm, model, ema = _train(EMAS[kind], track=True)
    averaged = _averaged(ema)
    zeros = 0
    for name in ("fc1", "fc2"):
        pruned = getattr(model, name).weight == 0
        zeros += int(pruned.sum())
        assert bool((getattr(averaged, name).weight[pruned] == 0).all()), name
    assert zeros == (8 * 16 + 16 * 16) // 2  # global 4x1 pruning, the head left out
    assert cm.summary is not None
    assert cm.summary["averaged_copy_sparsity"] == [pytest.approx(cm.summary["sparsity"])]


@pytest.mark.parametrize("kind", sorted(EMAS))
def test_without_tracking_the_copy_keeps_the_pruned_weights(kind: str) -> None:
    _, model, ema = _train(EMAS[kind], track=False)
    pruned = model.fc1.weight == 0
    assert bool((_averaged(ema).fc1.weight[pruned] != 0).all())


# converted after the pruning window (steps 2-10), so the masks no longer change and the
# list must be masked at every step end from then on, not only at the epoch end
@pytest.mark.parametrize("converted_on_step", [None, 11])
def test_averaged_tensors_in_parameter_order_are_masked_like_the_model(converted_on_step):
    made: list[ShadowEMA] = []

    def make(model: nn.Module) -> ShadowEMA:
        made.append(ShadowEMA(model.parameters()))
        return made[0]

    step, masked_in_time = [0], []
    if converted_on_step is not None:  # `ema.to(...)` replaces the list during training
        original = ShadowEMA.step

        def step_then_convert(self: ShadowEMA, parameters: Any) -> None:
            parameters = list(parameters)
            if step[0] > converted_on_step:  # the new list was masked at the last step end
                zeros = parameters[0] == 0  # fc1.weight
                masked_in_time.append(
                    bool(zeros.any()) and bool((self.shadow_params[0][zeros] == 0).all())
                )
            original(self, parameters)
            step[0] += 1
            if step[0] == converted_on_step:
                self.to(torch.float64)

        ShadowEMA.step = step_then_convert  # type: ignore[method-assign]
    try:
        _, model, ema = _train(make, track=True, epochs=1, steps=16)
    finally:
        if converted_on_step is not None:
            ShadowEMA.step = original  # type: ignore[method-assign]
    assert all(masked_in_time)
    pruned = [(m.weight == 0).clone() for m in (model.fc1, model.fc2)]
    ema.copy_to(model.parameters())  # what diffusers scripts do before saving
    assert sum(int(p.sum()) for p in pruned) == (8 * 16 + 16 * 16) // 2
    for module, zeros in zip((model.fc1, model.fc2), pruned):
        assert bool((module.weight[zeros] == 0).all())


def test_a_copy_in_half_precision_gets_masks_of_its_dtype() -> None:
    _, model, ema = _train(lambda m: ModuleEMA(m, dtype=torch.float16), track=True)
    assert ema.module.fc1.weight.dtype == torch.float16
    pruned = model.fc1.weight == 0
    assert bool((ema.module.fc1.weight[pruned] == 0).all())


def test_a_copy_of_the_wrapped_model_is_matched_by_the_plain_names() -> None:
    # made of `torch.compile(model)` (names under `_orig_mod.`) or of the manager's
    # wrapper (`_model.`): the masks still find their weights
    for wrap in (torch.compile, Model):
        _, model, ema = _train(lambda m: ModuleEMA(wrap(m)), track=True)  # noqa: B023
        pruned = model.fc1.weight == 0
        assert bool(pruned.any())
        inner = ema.module
        for attribute in ("_orig_mod", "_model"):
            inner = getattr(inner, attribute, inner)
        assert bool((inner.fc1.weight[pruned] == 0).all())


def test_a_copy_replaced_during_training_is_found_again_at_the_epoch_end() -> None:
    replaced: list[HolderEMA] = []

    def make(model: nn.Module) -> HolderEMA:
        holder = HolderEMA(model)
        original_update = holder.update

        def update(m: nn.Module) -> None:
            if not replaced:  # a script resetting its average once: a new module object
                holder.ema = copy.deepcopy(holder.ema)
                replaced.append(holder)
            original_update(m)

        holder.update = update  # type: ignore[method-assign]
        return holder

    _, model, ema = _train(make, track=True)
    assert replaced
    pruned = model.fc2.weight == 0
    assert bool((ema.ema.fc2.weight[pruned] == 0).all())


def test_none_is_no_copy() -> None:
    cm = prepare_compression(MLP(), WeightPruningConfig(target_sparsity=0.5))
    cm.track_copy(None)
    cm.callbacks.on_train_begin()
    cm.callbacks.on_step_end()
    cm.callbacks.on_train_end()
    assert cm.summary is not None and "averaged_copy_sparsity" not in cm.summary


def test_something_that_holds_no_copy_of_the_model_is_refused() -> None:
    cm = prepare_compression(MLP(), WeightPruningConfig(target_sparsity=0.5))
    with pytest.raises(ValueError, match="holds no copy of the pruned weights"):
        cm.track_copy(nn.Sequential(nn.Conv2d(3, 3, 3)))


def test_a_copy_of_another_shape_is_refused() -> None:
    torch.manual_seed(0)
    model = MLP()
    conf = WeightPruningConfig(
        target_sparsity=0.5, pruning_type="magnitude", start_step=0, end_step=0
    )
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    cm.callbacks.on_step_begin(0)  # masks now exist
    other = MLP()
    other.fc1 = nn.Linear(8, 12)
    with pytest.raises(ValueError, match="not a copy of the model"):
        cm.track_copy(other)


def test_under_qat_a_copy_made_before_preparation_is_refused() -> None:
    # QAT converts the copy too (tests/runtime/test_qat_averaged_copy.py): it must be a
    # copy of the prepared, fake-quant model
    cm = prepare_compression(MLP(), QuantizationAwareTrainingConfig())
    with pytest.raises(ValueError, match="after prepare_compression"):
        cm.track_copy(HolderEMA(MLP()))


def test_a_copy_of_a_model_with_nothing_to_prune_is_left_alone() -> None:
    # a model whose only Linear is the classifier head: the pruners select nothing
    cm = prepare_compression(nn.Sequential(nn.Linear(4, 2)), WeightPruningConfig())
    cm.track_copy(HolderEMA(nn.Sequential(nn.Linear(4, 2))))
    cm.callbacks.on_train_begin()
    cm.callbacks.on_step_end()
