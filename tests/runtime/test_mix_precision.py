"""`mix_precision.fit`: the CPU check, the measured-gain rule and the tuning.

Timings are replaced by a deterministic cost model (tests never assert on wall
time): a module costs its fp32 FLOPs, and in bf16 half of them plus a fixed
cast overhead, so large layers gain and small ones lose."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn

from neural_coder.runtime import cpu, load, mix_precision
from neural_coder.runtime.config import (
    AccuracyCriterion,
    ConfigValueError,
    MixedPrecisionConfig,
    TuningCriterion,
)
from neural_coder.runtime.mix_precision import BF16Linear

CAST_OVERHEAD = 2000.0


def cost(module: nn.Module) -> float:
    total = 0.0
    for m in module.modules():
        if isinstance(m, nn.Linear):
            flops = m.in_features * m.out_features
            total += flops / 2 + CAST_OVERHEAD if isinstance(m, BF16Linear) else flops
    return total


@pytest.fixture
def bf16_cpu(monkeypatch):
    info = cpu.CPUInfo("fake Xeon", frozenset({"avx2", "avx512f", "avx512_bf16"}), (0, 1), (0, 1))
    monkeypatch.setattr(cpu, "cpu_info", lambda: info)
    monkeypatch.setattr(mix_precision, "_onednn_bf16", lambda: True)
    monkeypatch.setattr(mix_precision, "time_module", lambda module, x: cost(module))
    monkeypatch.setattr(mix_precision, "time_model", lambda model, inputs: cost(model))
    monkeypatch.delenv("FORCE_BF16", raising=False)


@pytest.fixture
def avx2_cpu(monkeypatch):
    info = cpu.CPUInfo("fake desktop", frozenset({"avx", "avx2", "fma"}), (0, 1), (0, 1))
    monkeypatch.setattr(cpu, "cpu_info", lambda: info)
    monkeypatch.setattr(mix_precision, "time_module", lambda module, x: cost(module))
    monkeypatch.setattr(mix_precision, "time_model", lambda model, inputs: cost(model))
    monkeypatch.delenv("FORCE_BF16", raising=False)


class Net(nn.Module):
    """Two large layers that gain in bf16, one small head that does not."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(128, 128)
        self.fc2 = nn.Linear(128, 128)
        self.head = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


X = torch.randn(8, 128, generator=torch.Generator().manual_seed(1))


def kinds(model: nn.Module) -> dict[str, str]:
    return {n: type(m).__name__ for n, m in model.named_children()}


def test_refuses_on_a_cpu_without_native_bf16(avx2_cpu, tmp_path, monkeypatch, caplog):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        out = mix_precision.fit(net(), MixedPrecisionConfig(example_inputs=X))
    assert out is None
    assert "no native bf16 instructions" in caplog.text
    assert "FORCE_BF16=1" in caplog.text and "returning None" in caplog.text
    summary = json.loads(summary_path.read_text())
    assert summary["bf16_modules"] == 0 and "native bf16" in summary["bf16_refused"]


def test_force_bf16_converts_every_candidate_anyway(avx2_cpu, monkeypatch, caplog):
    monkeypatch.setenv("FORCE_BF16", "1")
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        out = mix_precision.fit(net(), MixedPrecisionConfig(example_inputs=X))
    assert kinds(out.model) == {"fc1": "BF16Linear", "fc2": "BF16Linear", "head": "BF16Linear"}
    assert "FORCE_BF16=1" in caplog.text


def test_converts_only_the_modules_that_measure_faster(bf16_cpu, tmp_path, monkeypatch):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    model = net()
    out = mix_precision.fit(model, MixedPrecisionConfig(example_inputs=X))
    assert kinds(out.model) == {"fc1": "BF16Linear", "fc2": "BF16Linear", "head": "Linear"}
    assert kinds(model) == {"fc1": "Linear", "fc2": "Linear", "head": "Linear"}  # untouched
    assert out.fp32_model is model
    with torch.no_grad():
        y = out(X)
        assert y.dtype == torch.float32
        assert torch.allclose(y, model(X), atol=0.05)
    summary = json.loads(summary_path.read_text())
    assert summary["bf16_modules"] == 2 and summary["quantized_modules"] == 0
    assert summary["baseline_metric"] is None and summary["final_metric"] is None
    assert summary["latency_bf16_ms"] < summary["latency_fp32_ms"]
    assert summary["size_after_bytes"] < summary["size_before_bytes"]
    # every candidate's timing is in the summary, the converted ones and the one kept
    measured = {m["name"]: m for m in summary["bf16_measurements"]}
    assert set(measured) == {"fc1", "fc2", "head"}, measured


def test_refuses_when_no_module_gains(bf16_cpu, caplog):
    small = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        out = mix_precision.fit(small, MixedPrecisionConfig(example_inputs=torch.randn(2, 8)))
    assert out is None
    assert "bf16 measured no gain: none of the 2 Linear / Conv module(s)" in caplog.text


def test_refuses_when_the_whole_model_is_not_faster(bf16_cpu, monkeypatch, caplog):
    monkeypatch.setattr(mix_precision, "time_model", lambda model, inputs: 1.0)
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        out = mix_precision.fit(net(), MixedPrecisionConfig(example_inputs=X))
    assert out is None
    assert "bf16 measured no gain for the whole model" in caplog.text


def test_refuses_without_a_batch_to_measure_on(bf16_cpu, caplog):
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        assert mix_precision.fit(net(), MixedPrecisionConfig()) is None
    assert "no batch to measure the bf16 speed on" in caplog.text


def test_measures_on_a_batch_of_the_calib_dataloader(bf16_cpu):
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, torch.zeros(len(X))), batch_size=4
    )
    out = mix_precision.fit(net(), MixedPrecisionConfig(), calib_dataloader=loader)
    assert kinds(out.model) == {"fc1": "BF16Linear", "fc2": "BF16Linear", "head": "Linear"}


def test_measures_on_the_batch_the_eval_func_ran_and_tunes_fallback(
    bf16_cpu, tmp_path, monkeypatch
):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    model = net()
    seen_inputs: list[torch.Tensor] = []
    captured = mix_precision._capture_module_inputs

    def spy(m, names, inputs):
        seen_inputs.append(inputs)
        return captured(m, names, inputs)

    monkeypatch.setattr(mix_precision, "_capture_module_inputs", spy)

    def evaluate(candidate: nn.Module) -> float:
        candidate(X)
        return 0.5 if isinstance(candidate.fc1, BF16Linear) else 0.9

    conf = MixedPrecisionConfig(
        accuracy_criterion=AccuracyCriterion(tolerable_loss=0.01),
        tuning_criterion=TuningCriterion(max_trials=10),
    )
    out = mix_precision.fit(model, conf, eval_func=evaluate)
    assert seen_inputs and seen_inputs[0] is X
    # trial 1 both in bf16 (fails), fc2 alone in fp32 (fails), fc1 alone in fp32 (met)
    assert kinds(out.model) == {"fc1": "Linear", "fc2": "BF16Linear", "head": "Linear"}
    summary = json.loads(summary_path.read_text())
    assert [t["fp32_ops"] for t in summary["trials"]] == [[], ["fc2"], ["fc1"]]
    assert summary["baseline_metric"] == 0.9 and summary["final_metric"] == 0.9


class MaskedNet(Net):
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x if mask is None else x * mask)


def test_measures_on_an_eval_call_mixing_positional_and_keyword_inputs(bf16_cpu, caplog):
    # `model(x, mask=m)` in the evaluation: the recorder gave up on the call ("no batch to
    # measure the bf16 speed on"), so the model stayed fp32; it is replayed as it was made
    torch.manual_seed(0)
    model = MaskedNet().eval()
    mask = torch.ones_like(X)

    def evaluate(candidate: nn.Module) -> float:
        candidate(X, mask=mask)
        return 1.0

    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        out = mix_precision.fit(model, MixedPrecisionConfig(), eval_func=evaluate)
    assert "no batch to measure" not in caplog.text
    assert kinds(out.model) == {"fc1": "BF16Linear", "fc2": "BF16Linear", "head": "Linear"}
    assert out.model.fc1.weight.dtype == torch.bfloat16


def test_a_compiled_model_is_measured_through_its_original_module(bf16_cpu):
    # the compiled graph did not call the hooks that capture each module's input, so
    # nothing was measured ("bf16 measured no gain ... ratio nan") and the model stayed fp32
    compiled = torch.compile(net().train(), backend="aot_eager")
    compiled(X).sum().backward()  # compiled while it trains, as a training script does

    @torch.no_grad()
    def evaluate(candidate: nn.Module) -> float:
        candidate.eval()
        candidate(X)
        return 1.0

    out = mix_precision.fit(compiled, MixedPrecisionConfig(), eval_func=evaluate)
    assert out is not None
    assert isinstance(out.model._orig_mod.fc1, BF16Linear)


def test_no_config_meeting_the_goal_returns_none(bf16_cpu, caplog):
    model = net()
    conf = MixedPrecisionConfig(tuning_criterion=TuningCriterion(max_trials=2))
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        out = mix_precision.fit(
            model, conf, eval_func=lambda m: (m(X), 1.0 if m is model else 0.0)[1]
        )
    assert out is None
    assert "no configuration met the accuracy goal" in caplog.text
    assert "2 trial(s) used (max_trials=2" in caplog.text


def test_op_dicts_pin_modules_to_fp32(bf16_cpu):
    fp32 = {"weight": {"dtype": ["fp32"]}}
    out = mix_precision.fit(
        net(), MixedPrecisionConfig(example_inputs=X, op_name_dict={"fc2": fp32})
    )
    assert kinds(out.model) == {"fc1": "BF16Linear", "fc2": "Linear", "head": "Linear"}
    out = mix_precision.fit(
        net(), MixedPrecisionConfig(example_inputs=X, op_type_dict={"Linear": fp32})
    )
    assert out is None


def test_excluded_or_unsupported_precisions_and_backends(bf16_cpu, caplog):
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        assert mix_precision.fit(net(), MixedPrecisionConfig(excluded_precisions=["bf16"])) is None
        assert mix_precision.fit(net(), MixedPrecisionConfig(precisions="fp16")) is None
    assert "bf16 is in excluded_precisions" in caplog.text
    assert "fp16 mixed precision needs an ONNX model" in caplog.text
    with pytest.raises(ConfigValueError, match="backend"):
        mix_precision.fit(net(), MixedPrecisionConfig(backend="ipex"))


def test_converted_model_saves_and_loads_back_as_the_bf16_model(bf16_cpu, tmp_path):
    out = mix_precision.fit(net(), MixedPrecisionConfig(example_inputs=X))
    out.save(tmp_path)
    loaded = load(tmp_path, Net())
    assert kinds(loaded) == kinds(out.model)
    assert kinds(loaded)["fc1"] == "BF16Linear" and kinds(loaded)["head"] == "Linear"
    assert loaded.fc1.weight.dtype == torch.bfloat16
    assert torch.equal(loaded.fc1.weight, out.model.fc1.weight)


def test_convert_keeps_state_dict_keys_and_runs_real_bf16():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    converted = mix_precision.convert(model, ["0", "3"])
    assert list(converted.state_dict()) == list(model.state_dict())
    assert converted[0].weight.dtype == torch.bfloat16 and model[0].weight.dtype == torch.float32
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(converted(x), model(x), atol=0.05)


def test_measure_seconds_runs_the_function_at_least_seven_times():
    calls = []
    seconds = mix_precision.measure_seconds(lambda: calls.append(1), min_time=0.0)
    assert seconds >= 0.0 and len(calls) == 7  # 2 warm-up + 5 timed


class LoraLike(nn.Module):
    """PEFT's LoRA layer as it computes: the adapted layer as `base_layer`, the adapter's
    input cast to `lora_A`'s weight dtype, `lora_B` given `lora_A`'s output as it is."""

    def __init__(self) -> None:
        super().__init__()
        self.base_layer = nn.Linear(128, 128)
        self.lora_A = nn.ModuleDict({"default": nn.Linear(128, 4, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(4, 128, bias=False)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        a = self.lora_A["default"]
        return result + self.lora_B["default"](a(x.to(a.weight.dtype))).to(result.dtype)


class AdaptedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = LoraLike()
        self.head = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc1(x)))


def test_a_peft_adapters_layers_stay_fp32_and_its_base_layer_converts(avx2_cpu, monkeypatch):
    """Converting `lora_A` made PEFT cast the adapter's input to bf16 and hand
    `lora_B` (fp32) a bf16 tensor: "expected m1 and m2 to have the same dtype"."""
    monkeypatch.setenv("FORCE_BF16", "1")
    torch.manual_seed(0)
    out = mix_precision.fit(AdaptedNet().eval(), MixedPrecisionConfig(example_inputs=X))
    converted = {n for n, m in out.model.named_modules() if isinstance(m, BF16Linear)}
    assert converted == {"fc1.base_layer", "head"}
    assert out.model(X).shape == (8, 4)
