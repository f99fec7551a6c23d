"""`summary.state_dict_size`: close to what `torch.save(model.state_dict())` writes, for
float and int8 models, without unpacking the int8 weights the backend described."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.modules.conv import _ConvNd
from torch.ao.nn.quantized.modules.linear import LinearPackedParams
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.quant import get_backend
from neural_coder.runtime.summary import SIZE_HINT_ATTR, build_summary, state_dict_size

TOLERANCE = 0.03


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(128, 96)
        self.head = nn.Linear(96, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.head(torch.relu(self.fc(torch.flatten(x, 1))))


class Untraceable(CNN):
    """Data-dependent control flow: FX cannot trace it, the eager path quantizes it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = -x
        return super().forward(x)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(300, 64)
        self.proj = nn.Linear(64, 64)
        self.out = nn.Linear(64, 300, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.proj(self.embed(ids))))


def serialized(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def assert_close(model: nn.Module) -> None:
    real = serialized(model)
    assert state_dict_size(model) == pytest.approx(real, rel=TOLERANCE)


def build(cls: type[nn.Module] = CNN) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


def calib() -> DataLoader:
    images = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    return DataLoader(TensorDataset(images, torch.zeros(16, dtype=torch.long)), batch_size=8)


def fit(model: nn.Module, **conf: object) -> nn.Module:
    q = quantization.fit(model, PostTrainingQuantConfig(**conf), calib_dataloader=calib())
    assert q is not None
    return q.model


PER_TENSOR = {".*": {"weight": {"granularity": ["per_tensor"]}}}


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("fp32", lambda: build()),
        ("tied fp32", lambda: build(Tied)),
        ("static fx", lambda: fit(build())),
        ("static fx, per-tensor weights", lambda: fit(build(), op_type_dict=PER_TENSOR)),
        ("static eager", lambda: fit(build(Untraceable))),
        ("dynamic", lambda: fit(build(), approach="dynamic")),
        (
            "dynamic, per-tensor weights",
            lambda: fit(build(), approach="dynamic", op_type_dict=PER_TENSOR),
        ),
        (
            "torch's own quantize_dynamic (no hints)",
            lambda: torch.ao.quantization.quantize_dynamic(build(), {nn.Linear}, dtype=torch.qint8),
        ),
    ],
)
def test_size_is_within_a_few_percent_of_the_serialized_size(name, make):
    model = make()
    if name == "static eager":
        assert get_backend().quantized_module_names(model)  # it did quantize
    assert_close(model)


def test_the_backend_describes_packed_weights_so_nothing_is_unpacked(monkeypatch):
    static, dynamic = fit(build()), fit(build(), approach="dynamic")
    eager = fit(build(Untraceable))
    for model in (static, dynamic, eager):
        assert any(SIZE_HINT_ATTR in vars(m) for m in model.modules())
    expected = [serialized(m) for m in (static, dynamic, eager)]

    def no_unpacking(self):  # noqa: ANN001, ANN202
        raise AssertionError("state_dict_size unpacked a weight the backend described")

    monkeypatch.setattr(LinearPackedParams, "_weight_bias", no_unpacking)
    monkeypatch.setattr(_ConvNd, "_weight_bias", no_unpacking)
    for model, real in zip((static, dynamic, eager), expected, strict=True):
        assert state_dict_size(model) == pytest.approx(real, rel=TOLERANCE)
        # the summary's weight facts (int8 bytes, zeros) come from the description too
        summary = build_summary(model, None)
        assert summary["int8_weight_bytes"] and summary["weights_total"] >= 128 * 96


def test_the_zeros_of_a_pruned_model_are_counted_after_quantization():
    model = build()
    with torch.no_grad():
        model.fc.weight[:, ::2] = 0  # half of fc's weights pruned
    for approach in ("static", "dynamic"):
        summary = build_summary(fit(model, approach=approach), None)
        assert summary["weights_zero"] >= 128 * 96 // 2
        assert summary["weights_total"] == sum(
            m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)
        )


def test_a_hint_made_stale_by_loading_a_state_dict_is_not_used(monkeypatch):
    model = fit(build(), approach="dynamic")
    per_tensor = fit(build(), approach="dynamic", op_type_dict=PER_TENSOR)
    holder = model.fc._packed_params
    hint = vars(holder)[SIZE_HINT_ATTR]
    # per-tensor weights loaded into modules described as per-channel: the hint is wrong now
    model.load_state_dict(per_tensor.state_dict())
    assert holder._packed_params is not hint.packed
    unpacked: list[nn.Module] = []
    weight_bias = LinearPackedParams._weight_bias

    def spy(self):  # noqa: ANN001, ANN202
        unpacked.append(self)
        return weight_bias(self)

    monkeypatch.setattr(LinearPackedParams, "_weight_bias", spy)
    assert state_dict_size(model) == pytest.approx(serialized(per_tensor), rel=TOLERANCE)
    assert holder in unpacked and model.head._packed_params in unpacked


def test_state_dict_hooks_and_plain_mappings_are_measured_through_the_state_dict():
    model = build()
    extra = torch.zeros(50_000)
    model._register_state_dict_hook(lambda module, state, prefix, local: state.update(extra=extra))
    assert "extra" in model.state_dict()
    assert_close(model)
    state = build().state_dict()
    assert state_dict_size(state) == pytest.approx(serialized(build()), rel=TOLERANCE)
