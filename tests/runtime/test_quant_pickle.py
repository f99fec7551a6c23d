"""`torch.save(model, f)` of a whole QAT model and of its int8 model, as scripts save
them, loads back with `torch.load(f, weights_only=False)` and runs."""

from __future__ import annotations

import io

import torch
from torch import nn

from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.quant.pickling import ModuleDeviceKwargs
from neural_coder.runtime.training import prepare_compression


class ConvHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 6 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def round_trip(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_qat_and_int8_models_pickle_whole_and_run() -> None:
    torch.manual_seed(0)
    model = ConvHead()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    manager = prepare_compression(model, QuantizationAwareTrainingConfig())
    manager.callbacks.on_train_begin()
    model = manager.model
    x = torch.randn(4, 3, 8, 8)
    for _ in range(3):
        model(x).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    qat = round_trip(model)  # a checkpoint saved during training
    assert torch.allclose(qat.eval()(x), model.eval()(x), atol=1e-5)
    assert any(
        isinstance(v, ModuleDeviceKwargs)
        for m in model.modules()
        if getattr(m, "qconfig", None) is not None
        for v in m.qconfig.activation.callable_args.values()
    )
    manager.callbacks.on_train_end()
    int8 = manager.model
    assert (
        sum(1 for m in int8.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")) > 0
    )
    loaded = round_trip(int8)
    kinds = {type(m).__name__ for m in loaded.modules() if "quantized" in type(m).__module__}
    assert {"Conv2d", "Linear"} <= kinds, kinds
    assert torch.equal(loaded(x), int8(x))


class WithMethods(ConvHead):
    """A model class with methods of its own: the traced QAT model keeps them."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(1)


def test_a_traced_model_with_methods_of_its_own_pickles() -> None:
    torch.manual_seed(0)
    manager = prepare_compression(WithMethods(), QuantizationAwareTrainingConfig())
    manager.callbacks.on_train_begin()
    x = torch.randn(2, 3, 8, 8)
    assert manager.model.predict(x).shape == (2,)
    round_trip(manager.model)(x)  # recompiling the traced subclass does not recurse
    manager.callbacks.on_train_end()
    int8 = manager.model
    assert torch.equal(round_trip(int8)(x), int8(x))
    assert int8.predict(x).shape == (2,)
