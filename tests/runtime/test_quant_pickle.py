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


def test_a_static_ptq_model_saved_whole_loads_in_a_fresh_process(tmp_path) -> None:
    """`torch.save(q_model, f)` after a static PTQ fit (the FX GraphModule and the `Model`
    wrapper `fit` returns) loads back in another Python process, which has none of this
    process's generated classes, and computes the same outputs."""
    import subprocess
    import sys
    from pathlib import Path

    from torch.utils.data import DataLoader, TensorDataset

    from neural_coder.runtime.config import PostTrainingQuantConfig
    from neural_coder.runtime.quantization import fit

    torch.manual_seed(0)
    loader = DataLoader(
        TensorDataset(torch.randn(16, 3, 8, 8), torch.zeros(16).long()), batch_size=4
    )
    q_model = fit(
        ConvHead().eval(), PostTrainingQuantConfig(approach="static"), calib_dataloader=loader
    )
    assert isinstance(q_model.model, torch.fx.GraphModule)
    x = torch.randn(2, 3, 8, 8)
    for name, obj in {"wrapper": q_model, "graph": q_model.model}.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        assert torch.equal(round_trip(obj)(x), obj(x))
    torch.save(x, tmp_path / "x.pt")
    torch.save(q_model(x), tmp_path / "expected.pt")
    check = (
        "import sys, torch\n"
        "d = sys.argv[1]\n"
        "x, expected = torch.load(d + '/x.pt'), torch.load(d + '/expected.pt')\n"
        "for name in ('wrapper', 'graph'):\n"
        "    model = torch.load(f'{d}/{name}.pt', weights_only=False)\n"
        "    assert torch.equal(model(x), expected), name\n"
        "print('loaded')\n"
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path)], cwd=root, capture_output=True, text=True
    )
    assert run.returncode == 0 and "loaded" in run.stdout, run.stderr[-2000:]
