"""QATCompressor against the Compressor contract (compressor.py) and the model wrapper."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from neural_coder.runtime.compressor import Compressor
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.model import Model
from neural_coder.runtime.quant import QATCompressor, rebuild_quantized
from neural_coder.runtime.quant.modules import QuantizedLinear
from neural_coder.runtime.training import prepare_compression

FP32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}


def wrap(model: nn.Module, compressors: list[Compressor]) -> Model:
    """What the CompressionManager does with its compressors."""
    wrapper = Model(model, conf=QuantizationAwareTrainingConfig())
    for c in compressors:
        c.bind(wrapper)
        wrapper.add_listener(c)
    return wrapper


class FeatureCapture(Compressor):
    """What the distillation compressor does: hooks by module name, re-registered."""

    kind = "capture"

    def __init__(self, names: list[str]) -> None:
        super().__init__(None)
        self.names = names
        self.handles: list[Any] = []
        self.seen: list[str] = []
        self.replaced = 0

    def bind(self, wrapper: Any) -> None:
        super().bind(wrapper)
        self._register(wrapper.model)

    def _register(self, model: nn.Module) -> None:
        for h in self.handles:
            h.remove()
        self.handles = [
            model.get_submodule(n).register_forward_hook(
                lambda _m, _i, _o, n=n: self.seen.append(n)
            )
            for n in self.names
        ]

    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None:
        self.replaced += 1
        self._register(new)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Branchy(Net):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = -x
        return super().forward(x)


def conf(**kw: Any) -> Any:
    return SimpleNamespace(approach="quant_aware_training", **kw)


def run(model: nn.Module, qat: QATCompressor, others: list[Compressor] = ()) -> Model:
    wrapper = wrap(model, [*others, qat])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    qat.on_train_begin()
    qat.on_train_begin()  # a second call (Trainer callback + hand-written) is a no-op
    trained = wrapper.model
    assert trained.training
    torch.manual_seed(0)
    for _ in range(3):
        loss = trained(torch.randn(4, 3, 8, 8)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    qat.on_train_end()
    qat.finalize()
    qat.finalize()
    return wrapper


@pytest.mark.parametrize(("cls", "path"), [(Net, "fx"), (Branchy, "eager")])
def test_prepare_train_convert_with_hooks_kept_by_name(cls, path):
    model = cls()
    capture = FeatureCapture(["conv", "fc"])
    qat = QATCompressor(conf())
    assert qat.kind == "qat"
    wrapper = run(model, qat, [capture])
    # FX: a new GraphModule, then the int8 copy; eager: the same top-level object is
    # prepared in place (the wrapper does not notify), then the int8 copy
    assert capture.replaced == (2 if path == "fx" else 1)
    # each training forward, once per hook: re-registered (FX) or taken over (eager)
    assert capture.seen == ["conv", "fc"] * 3
    summary = qat.summary()
    assert summary["qat_path"] == path
    if path == "fx":
        assert summary["qat_fallback_reason"] is None
    else:
        assert summary["qat_fallback_reason"].startswith("TraceError: ")
    assert summary["quantized_modules"] == 2
    int8 = wrapper.model
    assert not int8.training
    assert wrapper.q_config["approach"] == "quant_aware_training"
    assert wrapper.q_config["is_oneshot"] is True
    assert wrapper.q_config["path"] == path
    capture.seen.clear()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = int8(x)
    assert capture.seen == ["conv", "fc"]  # re-registered on the int8 model too
    rebuilt = rebuild_quantized(cls(), wrapper.q_config)
    rebuilt.load_state_dict(int8.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt(x), out)


def test_exclusions_come_from_the_config():
    qat = QATCompressor(QuantizationAwareTrainingConfig(op_name_dict={"fc": FP32}))
    wrapper = run(Net(), qat)
    assert qat.summary()["quantized_modules"] == 1
    assert type(wrapper.model.fc) is nn.Linear
    assert wrapper.q_config["quantized_ops"] == ["conv"]


def test_finalize_without_training_keeps_the_float_model(caplog):
    model = Net()
    qat = QATCompressor(conf())
    wrapper = wrap(model, [qat])
    with caplog.at_level(logging.WARNING):
        qat.finalize()
    assert "never prepared" in caplog.text
    assert wrapper.model is model and wrapper.q_config is None
    assert qat.summary() == {
        "qat_path": None,
        "qat_fallback_reason": None,
        "quantized_modules": 0,
    }


def test_training_again_after_conversion_is_refused():
    qat = QATCompressor(conf())
    run(Net(), qat)
    with pytest.raises(RuntimeError, match="converted to int8"):
        qat.on_train_begin()


def test_through_prepare_compression_on_a_hugging_face_model():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    bert = transformers.BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(bert.parameters(), lr=1e-3)
    cm = prepare_compression(bert, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    model = cm.model  # where the rewritten script fetches it
    ids = torch.randint(0, 100, (4, 8))
    for _ in range(2):
        loss = model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    cm.callbacks.on_train_end()
    assert isinstance(cm.model.model.classifier, QuantizedLinear)
    assert cm.model.q_config["path"] == "eager"
    assert cm.summary["qat_path"] == "eager" and cm.summary["qat_fallback_reason"]
    assert cm.summary["quantized_modules"] == 14
    with torch.no_grad():
        assert model(input_ids=ids).logits.shape == (4, 2)


class _WithTrainingStep(nn.Module):
    """Lightning style: the script calls the model's own methods, not only forward."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
        self.lr = 0.01

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def test_the_traced_qat_model_keeps_the_methods_and_attributes_of_its_class() -> None:
    torch.manual_seed(0)
    cm = prepare_compression(_WithTrainingStep(), QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    model = cm.model
    assert cm.summary is None and model.lr == 0.01
    optimizer = model.configure_optimizers()
    batch = (torch.randn(8, 20), torch.randint(0, 5, (8,)))
    for step in range(4):
        loss = model.training_step(batch, step)  # runs the fake-quant forward
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        cm.callbacks.on_after_optimizer_step()
    assert any("FakeQuantize" in type(m).__name__ for m in model.model.modules())
    cm.callbacks.on_train_end()
    assert cm.summary is not None and cm.summary["qat_path"] == "fx"
    int8 = cm.model.model
    assert type(int8).__name__ == "_WithTrainingStep" and int8.lr == 0.01
    assert cm.summary["quantized_modules"] == 2
    assert torch.isfinite(int8.training_step(batch, 0))


def test_qat_trains_under_bf16_autocast_and_the_prepared_model_pickles(tmp_path):
    """nanoGPT / llm.c style mixed precision: the model runs under autocast, so the
    fake-quant modules see bf16 activations (torch's kernels take fp32 only)."""
    import torch
    from torch import nn

    from neural_coder.runtime.config import QuantizationAwareTrainingConfig
    from neural_coder.runtime.training import prepare_compression

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    manager = prepare_compression(model, QuantizationAwareTrainingConfig())
    manager.callbacks.on_train_begin()
    model = manager.model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            out = model(torch.randn(4, 8))
        assert out.dtype == torch.bfloat16
        out.float().pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    torch.save(model, tmp_path / "qat.pt")
    manager.callbacks.on_train_end()
    int8 = manager.model
    assert int8(torch.randn(2, 8)).shape == (2, 4)
    assert any(
        type(m).__module__.startswith("torch.ao.nn.intrinsic.quantized") for m in int8.modules()
    )


def test_qat_trains_under_torch_compile_and_a_fresh_process_unpickles_it(tmp_path):
    """`model = torch.compile(cm.model)` (nanoGPT, deit): the fp32 forward hooks on the
    fake-quant modules made torch.compile trace them otherwise, and the fused per-channel
    kernel failed on the first step. The fp32 handling is a subclass now; a pickled
    prepared model loads where that subclass was not made yet."""
    import torch
    from torch import nn

    from neural_coder.runtime.config import QuantizationAwareTrainingConfig
    from neural_coder.runtime.quant import fake_quant_fp32
    from neural_coder.runtime.training import prepare_compression

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    manager = prepare_compression(model, QuantizationAwareTrainingConfig())
    manager.callbacks.on_train_begin()
    compiled = torch.compile(manager.model, backend="aot_eager")
    optimizer = torch.optim.SGD(manager.model.parameters(), lr=0.01)
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = compiled(torch.randn(4, 3, 8, 8))
        out.float().pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    torch.save(manager.model, tmp_path / "qat.pt")
    made = [name for name in vars(fake_quant_fp32) if name.startswith("_InFp32_")]
    assert made
    for name in made:
        delattr(fake_quant_fp32, name)  # as in a process that never prepared QAT
    loaded = torch.load(tmp_path / "qat.pt", weights_only=False)
    assert loaded(torch.randn(2, 3, 8, 8)).shape == (2, 4)
    manager.callbacks.on_train_end()
    assert any("quantized" in type(m).__module__ for m in manager.model.modules())


def test_a_deep_copy_of_the_prepared_model_of_a_class_with_methods_runs():
    """`best_model = copy.deepcopy(model)` while QAT trains an nn.Sequential: the prepared
    GraphModule carries the class's methods in a subclass, and a deep copy of it called
    itself forever (RecursionError)."""
    import copy

    import torch
    from torch import nn

    from neural_coder.runtime.config import QuantizationAwareTrainingConfig
    from neural_coder.runtime.training import prepare_compression

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    manager = prepare_compression(model, QuantizationAwareTrainingConfig())
    manager.callbacks.on_train_begin()
    x = torch.randn(2, 3, 6, 6)
    best = copy.deepcopy(manager.model)
    assert best(x).shape == manager.model(x).shape == (2, 64)
    assert copy.deepcopy(manager.model.model)(x).shape == (2, 64)
