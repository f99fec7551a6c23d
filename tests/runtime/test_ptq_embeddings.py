"""PTQ quantizes embeddings weight-only (int8 rows with a float scale and offset each, torch.ao's
`float_qparams_weight_only_qconfig`), as INC does: static (FX and eager paths) and dynamic."""

from __future__ import annotations

import io
import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.loading import load
from neural_coder.runtime.quant.modules import QuantizedEmbedding, QuantizedEmbeddingBag
from neural_coder.runtime.summary import state_dict_size

VOCAB, DIM = 500, 32


class Tagger(nn.Module):
    """Token embeddings, a bag of the same tokens (sum), a position table."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.bag = nn.EmbeddingBag(VOCAB, DIM, mode="sum")
        self.positions = nn.Embedding(12, DIM)
        self.register_buffer("position_ids", torch.arange(12).unsqueeze(0), persistent=False)
        self.fc = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(ids) + self.positions(self.positions_of(ids))
        x = torch.relu(self.fc(x)).mean(1) + self.bag(ids)
        return self.head(x)

    def positions_of(self, ids: torch.Tensor) -> torch.Tensor:
        return self.position_ids


class Untraceable(Tagger):
    def positions_of(self, ids: torch.Tensor) -> torch.Tensor:
        # an expanded (non-contiguous) view, as BERT reads its token types
        return self.position_ids.expand(ids.shape[0], -1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.sum() < 0:  # data-dependent: FX cannot trace it, the eager path quantizes
            ids = -ids
        return super().forward(ids)


class Kept(nn.Module):
    """Embeddings PTQ must leave float: a tied one and one with max_norm."""

    def __init__(self) -> None:
        super().__init__()
        self.tied = nn.Embedding(VOCAB, DIM)
        self.normed = nn.Embedding(VOCAB, DIM, max_norm=1.0)
        self.out = nn.Linear(DIM, VOCAB, bias=False)
        self.out.weight = self.tied.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.tied(ids) + self.normed(ids))


def ids(n: int = 32) -> torch.Tensor:
    return torch.randint(1, VOCAB, (n, 12), generator=torch.Generator().manual_seed(1))


def quantize(model: nn.Module, approach: str, **conf: object):  # noqa: ANN201
    loader = DataLoader(TensorDataset(ids(), torch.zeros(32, dtype=torch.long)), batch_size=8)
    conf = PostTrainingQuantConfig(approach=approach, calibration_sampling_size=32, **conf)
    q = quantization.fit(model, conf, calib_dataloader=loader if approach == "static" else None)
    assert q is not None
    return q


def serialized(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def build(cls: type[nn.Module] = Tagger) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


@pytest.mark.parametrize(
    ("approach", "cls", "path"),
    [("static", Tagger, "fx"), ("static", Untraceable, "eager"), ("dynamic", Untraceable, "eager")],
)
def test_embeddings_are_int8_the_model_a_quarter_and_it_saves_and_loads(
    approach, cls, path, tmp_path, monkeypatch
):
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(tmp_path / "summary.json"))
    model = build(cls)
    q = quantize(model, approach)
    assert q.q_config["path"] == path
    assert type(q.model.tokens) is QuantizedEmbedding
    assert type(q.model.positions) is QuantizedEmbedding
    assert type(q.model.bag) is QuantizedEmbeddingBag
    assert {"tokens", "positions", "bag"} <= set(q.q_config["quantized_ops"])
    x = ids(8)
    with torch.no_grad():
        expected, got = model(x), q(x)
    # int8 activations of the Linear layers (static) cost more than the int8 embedding rows
    assert (got - expected).abs().max() < 0.03 * expected.abs().max()
    # embeddings are most of this model: 32 int8 values and a float scale and offset a row
    assert serialized(q.model) < 0.45 * serialized(model)
    assert state_dict_size(q.model) == pytest.approx(serialized(q.model), rel=0.03)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["size_after_bytes"] == pytest.approx(serialized(q.model), rel=0.03)
    assert summary["size_before_bytes"] == pytest.approx(serialized(model), rel=0.03)
    assert summary["quantized_modules"] == 5  # 3 embeddings (a bag among them), fc, head
    assert summary["int8_weight_bytes"] >= (2 * VOCAB + 12) * DIM

    q.save(str(tmp_path / "int8"))
    loaded = load(str(tmp_path / "int8"), build(cls))
    inner = getattr(loaded, "model", loaded)
    assert type(inner.tokens) is QuantizedEmbedding
    with torch.no_grad():
        assert torch.equal(loaded(x), got)
    torch.save(q.model, tmp_path / "whole.pt")
    whole = torch.load(tmp_path / "whole.pt", weights_only=False)
    with torch.no_grad():
        assert torch.equal(whole(x), got)


@pytest.mark.parametrize("approach", ["static", "dynamic"])
def test_tied_max_norm_and_excluded_embeddings_stay_float(approach):
    q = quantize(build(Kept), approach)
    assert type(q.model.tied) is nn.Embedding and type(q.model.normed) is nn.Embedding
    assert q.model.out.weight is q.model.tied.weight or type(q.model.out) is not nn.Linear
    fp32 = {"Embedding": {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}}
    q = quantize(build(), approach, op_type_dict=fp32)
    assert type(q.model.tokens) is nn.Embedding and type(q.model.positions) is nn.Embedding
    assert type(q.model.bag) is QuantizedEmbeddingBag  # its own type, not matched
