"""The device bridge of int8 models (`runtime/int8_device.py`): the `Model` wrapper of an
int8 result keeps it on the CPU, bridges GPU inputs, and refuses dtype casts.

Without a GPU the "other device" is `meta`: outputs can move there (only shapes), and
`first_device` is patched to say the inputs came from it. The real-CUDA checks at the
end skip where no GPU is present (CI)."""

from __future__ import annotations

import io
import logging
from collections import namedtuple

import pytest
import torch
from torch import nn

from neural_coder.runtime import int8_device, quantization
from neural_coder.runtime.config import (
    AccuracyCriterion,
    PostTrainingQuantConfig,
    QuantizationAwareTrainingConfig,
)
from neural_coder.runtime.model import Model
from neural_coder.runtime.quant import QuantSpec, get_backend
from neural_coder.runtime.training import prepare_compression

from .conftest import TinyMLP, tiny_batches

META = torch.device("meta")
Pair = namedtuple("Pair", "logits hidden")


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int8_device, "_logged", set())


def int8_wrapper(model: nn.Module | None = None) -> Model:
    torch.manual_seed(0)
    result = quantization.fit(model or TinyMLP(), PostTrainingQuantConfig(approach="dynamic"))
    assert isinstance(result, Model) and result.runs_int8_on_cpu
    return result


def test_tensors_to_keeps_every_container_type() -> None:
    from transformers.modeling_outputs import SequenceClassifierOutput

    x = torch.ones(2, 3)
    value = {
        "pair": Pair(x, [x, (x, 1)]),
        "out": SequenceClassifierOutput(logits=x, hidden_states=(x,)),
        "max": torch.max(x, dim=1),
        "text": "kept",
    }
    moved = int8_device.tensors_to(value, META)
    assert type(moved["pair"]) is Pair and moved["pair"].logits.device == META
    assert type(moved["pair"].hidden) is list and moved["pair"].hidden[1][1] == 1
    assert moved["pair"].hidden[1][0].device == META
    out = moved["out"]
    assert type(out) is SequenceClassifierOutput
    assert (
        out.logits.device == META and out.hidden_states[0].device == META and out[0] is out.logits
    )
    assert type(moved["max"]) is type(value["max"]) and moved["max"].values.device == META
    assert moved["text"] == "kept"
    assert x.device.type == "cpu"  # the input is left as it was


def test_first_device_looks_at_positional_then_keyword_arguments() -> None:
    x = torch.ones(1)
    assert int8_device.first_device((x,), {}) == torch.device("cpu")
    assert int8_device.first_device(("a",), {"input_ids": x.to(META)}) == META
    assert int8_device.first_device((), {}) is None


def test_a_call_with_inputs_off_the_cpu_runs_on_the_cpu_and_returns_there(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = int8_wrapper()
    seen: list[torch.device] = []
    model.model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].device))
    x = torch.randn(5, 8)
    expected = model(x)
    monkeypatch.setattr(int8_device, "first_device", lambda args, kwargs: META)
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        out = model(x)
        model(x)
    assert seen == [torch.device("cpu")] * 3  # the int8 module always ran on the CPU
    assert out.device == META and out.shape == expected.shape
    notes = [r.getMessage() for r in caplog.records if "run on the CPU only" in r.getMessage()]
    assert len(notes) == 1 and "inputs on meta are moved to the CPU" in notes[0]


def test_cpu_inputs_call_the_int8_module_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    model = int8_wrapper()
    moves: list[object] = []
    monkeypatch.setattr(int8_device, "tensors_to", lambda value, device: moves.append(device))
    x = torch.randn(3, 8)
    assert torch.equal(model(x), model.model(x))
    assert moves == []


def test_to_a_gpu_keeps_the_int8_model_on_the_cpu(caplog: pytest.LogCaptureFixture) -> None:
    model = int8_wrapper()
    x = torch.randn(4, 8)
    before = model(x)
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        assert model.to("cuda") is model  # no CUDA needed: nothing moves
        assert model.cuda() is model
        assert model.to(torch.device("cuda:0"), non_blocking=True) is model
        assert model.to("cuda", torch.float32) is model
    assert all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])
    notes = [r.getMessage() for r in caplog.records if "stays on the CPU" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith("model.to: ")
    assert model.to("cpu") is model and torch.equal(model(x), before)
    assert model.cpu() is model and torch.equal(model.eval()(x), before)


@pytest.mark.parametrize(
    "cast",
    [
        lambda m: m.half(),
        lambda m: m.bfloat16(),
        lambda m: m.double(),
        lambda m: m.to(torch.float16),
        lambda m: m.to("cuda", dtype=torch.bfloat16),
    ],
)
def test_a_dtype_cast_of_an_int8_model_is_refused(cast) -> None:
    model = int8_wrapper(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)))
    with pytest.raises(TypeError, match=r"an int8 model cannot be cast to torch\.\w+"):
        cast(model)
    assert model.model[1].weight.dtype == torch.float32


def test_a_float_model_wrapper_moves_and_casts_as_any_module() -> None:
    model = Model(TinyMLP())
    assert not model.runs_int8_on_cpu
    assert model.to(META) is model and model.fc1.weight.device == META
    assert model.half().fc1.weight.dtype == torch.float16


def test_the_qat_result_is_bridged_too() -> None:
    torch.manual_seed(0)
    wrapper = Model(TinyMLP())
    backend = get_backend()
    prepared = backend.prepare_qat(wrapper.model, QuantSpec())
    wrapper.model = prepared.model
    assert not wrapper.runs_int8_on_cpu  # fake-quant training runs on the model's device
    wrapper.model = backend.convert(prepared)  # what QATCompressor.finalize does
    assert wrapper.runs_int8_on_cpu and wrapper.to("cuda") is wrapper


def test_pickled_after_a_bridged_move_loads_and_runs() -> None:
    model = int8_wrapper()
    model.to("cuda")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = torch.randn(2, 8)
    assert loaded.runs_int8_on_cpu and torch.equal(loaded(x), model(x))


def test_eval_func_gets_the_bridged_wrapper_for_a_model_on_a_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model on a GPU (the fp32 device is patched): each trial's eval_func gets the
    wrapper, whose `.to(device)` the script's evaluation may call; on the CPU the bare
    int8 module, as before."""
    batches = tiny_batches()

    def run(on_gpu: bool) -> list[nn.Module]:
        seen: list[nn.Module] = []

        def evaluate(model: nn.Module) -> float:
            seen.append(model)
            model.to("cuda" if on_gpu and model is not fp32 else "cpu").eval()
            with torch.no_grad():
                hits = sum((model(x).argmax(1) == y).sum().item() for x, y in batches)
            return hits / 32

        if on_gpu:
            real = quantization.model_device
            monkeypatch.setattr(
                quantization,
                "model_device",
                lambda m: torch.device("cuda") if m is fp32 else real(m),
            )
        torch.manual_seed(0)
        fp32 = TinyMLP()
        result = quantization.fit(
            fp32, PostTrainingQuantConfig(approach="dynamic"), eval_func=evaluate
        )
        assert isinstance(result, Model)
        return seen

    on_cpu = run(on_gpu=False)
    assert type(on_cpu[1]) is not Model and get_backend().count_quantized_modules(on_cpu[1])
    on_gpu = run(on_gpu=True)
    assert isinstance(on_gpu[1], Model) and on_gpu[1].runs_int8_on_cpu


# -- real CUDA (skipped without a GPU) ------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


DEVICES = ["cpu", pytest.param("cuda", marks=cuda)]


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_a_gpu_script_goes_on_with_the_int8_model(approach: str, where: str) -> None:
    """fit on a CUDA model, tuned by an evaluation written for the GPU, then the script's
    own `model.to(device)`, evaluation and `torch.save(model)` (on the CPU as well)."""
    torch.manual_seed(0)
    device = torch.device(where)
    fp32 = Net().to(device).eval()
    data = [(torch.randn(8, 3, 8, 8), torch.randint(0, 4, (8,))) for _ in range(3)]
    with torch.no_grad():
        reference = [fp32(x.to(device)) for x, _ in data]

    def evaluate(m: nn.Module) -> float:  # agreement with the fp32 outputs, on the GPU
        m.to(device).eval()
        with torch.no_grad():
            outs = [m(x.to(device)) for x, _ in data]
        assert all(o.device.type == where for o in outs)
        errors = [(o - r).abs().max() / r.abs().max() for o, r in zip(outs, reference)]
        return 1.0 - max(errors).item()

    quantized = quantization.fit(
        fp32,
        PostTrainingQuantConfig(
            approach=approach,
            accuracy_criterion=AccuracyCriterion(criterion="absolute", tolerable_loss=0.2),
        ),
        calib_dataloader=data if approach == "static" else None,
        eval_func=evaluate,
    )
    assert isinstance(quantized, Model) and quantized.runs_int8_on_cpu
    model = quantized.to(device)
    assert get_backend().count_quantized_modules(model.model) >= 1
    assert evaluate(model) > 0.8
    assert all(not t.is_cuda for t in [*model.parameters(), *model.buffers()])
    buffer = io.BytesIO()
    torch.save(model, buffer)


@pytest.mark.parametrize("where", DEVICES)
def test_qat_on_a_gpu_hands_back_a_bridged_int8_model(where: str) -> None:
    torch.manual_seed(0)
    device = torch.device(where)
    model = Net().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    manager = prepare_compression(model, QuantizationAwareTrainingConfig())
    manager.callbacks.on_train_begin()
    model = manager.model
    x, y = torch.randn(8, 3, 8, 8, device=device), torch.randint(0, 4, (8,), device=device)
    for _ in range(3):
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
    manager.callbacks.on_train_end()
    model = manager.model.to(device).eval()
    assert model.runs_int8_on_cpu
    with torch.no_grad():
        out = model(x)
    assert out.device.type == where and out.shape == (8, 4)


class ConvThenLinear(nn.Module):
    """A float conv (dynamic quantization keeps it) feeding an int8 Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_an_int8_model_under_cpu_autocast_runs_in_float32() -> None:
    """An evaluation under `torch.autocast("cpu", dtype=torch.bfloat16)`: the float conv
    handed the int8 Linear bf16, which its kernel refuses; every tuning trial failed and
    the fit kept fp32. The int8 model now runs in float32 inside, and autocast is on
    again after each call."""
    x = torch.randn(2, 3, 8, 8)

    def evaluate(model: nn.Module) -> float:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
            assert torch.is_autocast_enabled("cpu")
        return 1.0

    result = quantization.fit(
        ConvThenLinear(), PostTrainingQuantConfig(approach="dynamic"), eval_func=evaluate
    )
    assert result is not None and result.runs_int8_on_cpu
    assert "quantized" in type(result.model.fc).__module__
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert result(x).dtype == torch.float32
