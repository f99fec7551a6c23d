"""The run summary's measurements, made cheaper for `quantization.fit`: one module walk,
size hints for the quantized Linear's own scale and zero point, a zero count that checks
the smallest magnitude first. Each must give what `torch.save` / `named_modules` /
`count_nonzero` give, on the model kinds `fit` quantizes."""

from __future__ import annotations

import io

import pytest
import torch
import torch.ao.nn.quantized as nnq
from torch import nn
from torch.utils.data import DataLoader

from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.state_size import count_zeros, module_walk
from neural_coder.runtime.summary import build_summary, count_quantized_modules, state_dict_size

from .hf_models import tiny_bert

TOLERANCE = 0.02


def serialized(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


class Tagger(nn.Module):
    """Embeddings, a recurrent layer and a Linear head: what dynamic quantization converts."""

    def __init__(self, rnn: type[nn.Module]) -> None:
        super().__init__()
        self.embed = nn.Embedding(500, 48)
        self.rnn = rnn(48, 64, batch_first=True)
        self.head = nn.Linear(64, 12)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.embed(ids))[0])


def bert_batches() -> DataLoader:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (8, 16), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return DataLoader([batch, batch], batch_size=None)


def quantize(model: nn.Module, approach: str, calib: DataLoader | None = None) -> nn.Module:
    conf = PostTrainingQuantConfig(approach=approach)
    if calib is not None:
        conf = PostTrainingQuantConfig(approach=approach, calibration_sampling_size=[16])
    result = quantization.fit(model.eval(), conf, calib_dataloader=calib)
    assert result is not None
    return result.model


CASES = {
    "bert fp32": lambda: tiny_bert().eval(),
    "bert dynamic (Linear + embeddings)": lambda: quantize(tiny_bert(), "dynamic"),
    "bert static (eager path)": lambda: quantize(tiny_bert(), "static", bert_batches()),
    "embeddings + LSTM dynamic": lambda: quantize(Tagger(nn.LSTM), "dynamic"),
    "embeddings + GRU dynamic": lambda: quantize(Tagger(nn.GRU), "dynamic"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_size_estimate_is_the_serialized_size(name):
    model = CASES[name]()
    if name != "bert fp32":
        assert count_quantized_modules(model) > 0
    assert state_dict_size(model) == pytest.approx(serialized(model), rel=TOLERANCE)


def test_the_walk_is_named_modules():
    model = tiny_bert()
    shared = nn.Linear(4, 4)
    model.add_module("twice_a", shared)
    model.add_module("twice_b", shared)
    model.add_module("nothing", None)
    walked = module_walk(model)
    assert [(n, id(m)) for n, m in walked] == [(n, id(m)) for n, m in model.named_modules()]


def test_the_quantized_linear_scale_and_zero_point_are_sized_without_saving(monkeypatch):
    model = quantize(tiny_bert(), "dynamic")
    real = serialized(model)
    summary = build_summary(model, None)

    def no_saving(self, destination, prefix, keep_vars):  # noqa: ANN001, ANN202
        raise AssertionError("state_dict_size built the state dict of a described Linear")

    monkeypatch.setattr(nnq.Linear, "_save_to_state_dict", no_saving)
    assert state_dict_size(model) == pytest.approx(real, rel=TOLERANCE)
    assert build_summary(model, None) == summary


@pytest.mark.parametrize("size", [100, 40_000])
def test_zeros_are_counted_exactly(size):
    weight = torch.randn(size)
    assert count_zeros(weight) == 0
    weight[::7] = 0.0
    weight[1] = -0.0  # a zero too
    expected = size - int(torch.count_nonzero(weight))
    assert count_zeros(weight) == expected
    weight[3] = float("nan")
    assert count_zeros(weight) == size - int(torch.count_nonzero(weight))
    assert count_zeros(nn.Parameter(weight)) == size - int(torch.count_nonzero(weight))


class FunctionalHead(nn.Module):
    """A layer written with `F.linear` on its own parameters: FX quantizes the call itself."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 8))
        self.bias = nn.Parameter(torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight, self.bias)


@pytest.mark.parametrize(
    "model", [nn.Linear(8, 4), FunctionalHead()], ids=["lone-linear", "f-linear"]
)
def test_int8_calls_an_fx_graph_makes_itself_are_counted(model):
    """No quantized module, but a `torch.ops.quantized.linear` call on a packed weight:
    the summary counted 0, which read as 'nothing was quantized'."""
    batches = [torch.randn(4, 8) for _ in range(4)]
    config = PostTrainingQuantConfig(approach="static")
    int8 = quantization.fit(
        model.eval(), config, calib_dataloader=DataLoader(batches, batch_size=None)
    )
    inner = int8.model
    assert not any("quantized" in type(m).__module__ for m in inner.modules())
    assert count_quantized_modules(inner) == 1
    assert count_quantized_modules(nn.Linear(8, 4)) == 0


def test_dynamic_fit_of_a_lone_layer_says_why_it_quantizes_nothing(caplog):
    """torch's dynamic quantization swaps the layers inside a model: a model that is one
    Linear comes back None, and the reason names that, not 'Linear has none'."""
    with caplog.at_level("WARNING", logger="neural_coder.runtime"):
        result = quantization.fit(
            nn.Linear(8, 4).eval(), PostTrainingQuantConfig(approach="dynamic")
        )
    assert result is None
    assert "the model is one Linear layer" in caplog.text
    assert "approach='static'" in caplog.text
