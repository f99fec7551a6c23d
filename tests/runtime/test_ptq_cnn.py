"""`quantization.fit` on a small CNN and an MLP: once, tuned, op-wise, saved and loaded."""

from __future__ import annotations

import json
import logging
import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import Model, load, quantization
from neural_coder.runtime.config import (
    AccuracyCriterion,
    ConfigValueError,
    PostTrainingQuantConfig,
    TuningCriterion,
)
from neural_coder.runtime.quant import get_backend
from neural_coder.runtime.summary import count_quantized_modules

from .conftest import TinyMLP


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 64)  # wide enough that int8 saves more than its recipe
        self.head = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.head(self.relu(self.fc(torch.flatten(x, 1))))


OPS = ["conv1", "conv2", "fc", "head"]


def cnn() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN().eval()


def loader(n: int = 32, batch: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(1)
    images = torch.randn(n, 3, 8, 8, generator=g)
    with torch.no_grad():
        labels = cnn()(images).argmax(1)
    return DataLoader(TensorDataset(images, labels), batch_size=batch)


def int8_names(model: nn.Module) -> set[str]:
    return set(get_backend().quantized_module_names(model))


def test_static_once_quantizes_every_conv_and_linear_and_writes_the_summary(
    tmp_path, monkeypatch, caplog
):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    model = cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = loader()
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        q = quantization.fit(model, PostTrainingQuantConfig(), calib_dataloader=data)
    assert isinstance(q, Model)
    assert int8_names(q.model) == set(OPS)
    assert q.q_config["path"] == "fx" and q.q_config["approach"] == "post_training_static_quant"
    assert q.fp32_model is model
    # the fp32 model is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = next(iter(data))[0]
    with torch.no_grad():
        assert (q(x) - model(x)).abs().max() < 0.1
    summary = json.loads(summary_path.read_text())
    assert summary["quantized_modules"] == 4
    assert summary["baseline_metric"] is None and summary["final_metric"] is None
    assert summary["trials"] == []
    assert summary["approach"] == "post_training_static_quant"
    assert summary["size_after_bytes"] < summary["size_before_bytes"]
    assert "quantized once" in caplog.text and "model size" in caplog.text


def test_calibration_reads_ceil_of_sampling_size_over_batch_size_batches():
    seen: list[int] = []

    class Counting(DataLoader):
        def __iter__(self):
            for i, batch in enumerate(super().__iter__()):
                seen.append(i)
                yield batch

    data = loader(64, 8)
    counting = Counting(data.dataset, batch_size=8)
    conf = PostTrainingQuantConfig(calibration_sampling_size=20)
    assert quantization.fit(cnn(), conf, calib_dataloader=counting) is not None
    assert seen == [0, 1, 2]  # ceil(20 / 8)


def test_calib_func_replaces_the_dataloader():
    calls: list[nn.Module] = []
    x = next(iter(loader()))[0]

    def calibrate(model: nn.Module) -> None:
        calls.append(model)
        model(x)

    q = quantization.fit(cnn(), PostTrainingQuantConfig(), calib_func=calibrate)
    assert len(calls) == 1 and int8_names(q.model) == set(OPS)


def test_dynamic_needs_no_data_and_auto_without_data_is_dynamic():
    torch.manual_seed(0)
    mlp = TinyMLP().eval()
    q = quantization.fit(mlp, PostTrainingQuantConfig(approach="dynamic"))
    assert q.q_config["approach"] == "post_training_dynamic_quant"
    assert count_quantized_modules(q.model) == 3
    q = quantization.fit(mlp, PostTrainingQuantConfig(approach="auto"))
    assert q.q_config["approach"] == "post_training_dynamic_quant"


def test_static_without_calibration_data_is_refused():
    with pytest.raises(ValueError, match="calib_dataloader"):
        quantization.fit(cnn(), PostTrainingQuantConfig(approach="static"))


def test_unsupported_backend_and_half_an_evaluation_are_refused():
    with pytest.raises(ConfigValueError, match="backend"):
        quantization.fit(cnn(), PostTrainingQuantConfig(backend="ipex"), calib_dataloader=loader())
    with pytest.raises(ValueError, match="eval_metric"):
        quantization.fit(
            cnn(), PostTrainingQuantConfig(), calib_dataloader=loader(), eval_dataloader=loader()
        )


def test_op_name_and_op_type_dicts_keep_ops_in_fp32():
    fp32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}
    conf = PostTrainingQuantConfig(op_name_dict={"head": fp32})
    q = quantization.fit(cnn(), conf, calib_dataloader=loader())
    assert int8_names(q.model) == {"conv1", "conv2", "fc"}
    assert type(q.model.head) is nn.Linear
    conf = PostTrainingQuantConfig(op_type_dict={"Conv2d": fp32})
    q = quantization.fit(cnn(), conf, calib_dataloader=loader())
    assert int8_names(q.model) == {"fc", "head"}
    # regex fullmatch on names
    conf = PostTrainingQuantConfig(op_name_dict={"conv.*": fp32})
    q = quantization.fit(cnn(), conf, calib_dataloader=loader())
    assert int8_names(q.model) == {"fc", "head"}


def sensitive_eval(fp32: nn.Module, sensitive: dict[str, float]):
    """Accuracy 1.0 minus a penalty for each listed op that is int8 in the model."""

    def evaluate(model: nn.Module) -> float:
        if model is fp32:
            return 1.0
        names = int8_names(model)
        return 1.0 - sum(p for name, p in sensitive.items() if name in names) - 0.001

    return evaluate


def test_tuning_keeps_the_sensitive_ops_in_fp32_and_the_result_round_trips(
    tmp_path, monkeypatch, caplog
):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    model = cnn()
    conf = PostTrainingQuantConfig(
        accuracy_criterion=AccuracyCriterion(tolerable_loss=0.01),
        tuning_criterion=TuningCriterion(max_trials=20),
    )
    evaluate = sensitive_eval(model, {"conv1": 0.05, "head": 0.03})
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        q = quantization.fit(model, conf, calib_dataloader=loader(), eval_func=evaluate)
    assert q is not None
    assert int8_names(q.model) == {"conv2", "fc"}
    # trial 1, one by one from the last op (head, fc, conv2, conv1), then {conv1, head}
    summary = json.loads(summary_path.read_text())
    assert [t["fp32_ops"] for t in summary["trials"]] == [
        [],
        ["head"],
        ["fc"],
        ["conv2"],
        ["conv1"],
        ["conv1", "head"],
    ]
    assert summary["baseline_metric"] == 1.0
    assert summary["final_metric"] == pytest.approx(0.999)
    assert summary["fp32_ops"] == ["conv1", "head"]
    assert summary["quantized_modules"] == 2
    trial_lines = [
        r.getMessage() for r in caplog.records if re.match(r"trial \d+/20 ", r.getMessage())
    ]
    assert len(trial_lines) == 6

    path = q.save(tmp_path / "out")
    loaded = load(tmp_path / "out", cnn())
    assert int8_names(loaded) == {"conv2", "fc"}
    x = next(iter(loader()))[0]
    with torch.no_grad():
        assert torch.equal(loaded(x), q.model(x))
    assert path.endswith("best_model.pt")


def test_no_config_meeting_the_goal_returns_none_and_says_why(tmp_path, monkeypatch, caplog):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    model = cnn()
    conf = PostTrainingQuantConfig(tuning_criterion=TuningCriterion(max_trials=3))
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        q = quantization.fit(
            model, conf, calib_dataloader=loader(), eval_func=lambda m: 1.0 if m is model else 0.5
        )
    assert q is None
    assert "no configuration met the accuracy goal: best accuracy seen 0.5000" in caplog.text
    assert "3 trial(s) used (max_trials=3" in caplog.text
    assert "returning None" in caplog.text
    summary = json.loads(summary_path.read_text())
    assert summary["final_metric"] is None and summary["baseline_metric"] == 1.0
    assert len(summary["trials"]) == 3 and summary["quantized_modules"] == 0


def test_eval_dataloader_with_topk_dict_and_with_a_metric_object():
    data = loader()
    q = quantization.fit(
        cnn(),
        PostTrainingQuantConfig(accuracy_criterion=AccuracyCriterion(tolerable_loss=0.5)),
        calib_dataloader=data,
        eval_dataloader=data,
        eval_metric={"topk": 1},
    )
    assert q is not None and int8_names(q.model) == set(OPS)

    class Agreement:
        """Counts update calls; result 1.0 on fp32, 0.0 once int8."""

        def __init__(self) -> None:
            self.updates = 0
            self.calls: list[float] = []

        def reset(self) -> None:
            self.hits = 0

        def update(self, preds, labels) -> None:
            self.updates += 1
            self.hits += int((preds.argmax(1) == labels).sum())

        def result(self) -> float:
            return self.hits / 32

    metric = Agreement()
    q = quantization.fit(
        cnn(),
        PostTrainingQuantConfig(accuracy_criterion=AccuracyCriterion(tolerable_loss=0.5)),
        calib_dataloader=data,
        eval_dataloader=data,
        eval_metric=metric,
    )
    assert q is not None
    assert metric.updates == 8  # baseline + trial 1, 4 batches each


def test_topk_metric():
    metric = quantization.build_metric({"topk": 2})
    metric.reset()
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.02, 0.08], [0.2, 0.3, 0.5]])
    metric.update(scores, torch.tensor([2, 1, 0]))
    assert metric.result() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="unknown built-in metric"):
        quantization.build_metric({"BLEU": {}})


def test_a_wrapped_model_is_accepted():
    model = cnn()
    q = quantization.fit(Model(model), PostTrainingQuantConfig(), calib_dataloader=loader())
    assert int8_names(q.model) == set(OPS)


def test_quant_level_zero_is_conservative(tmp_path, monkeypatch):
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    model = cnn()
    conf = PostTrainingQuantConfig(quant_level=0)
    q = quantization.fit(
        model, conf, calib_dataloader=loader(), eval_func=sensitive_eval(model, {"head": 0.05})
    )
    assert int8_names(q.model) == {"conv1", "conv2", "fc"}
    trials = json.loads(summary_path.read_text())["trials"]
    # from all fp32: both convs (kept), both linears (not met), fc alone (kept); head
    # alone would give the all-int8 config of trial 2 again, which is not re-run
    assert [t["fp32_ops"] for t in trials] == [["fc", "head"], [], ["head"]]
    assert [t["met"] for t in trials] == [True, False, True]


def test_dynamic_on_a_model_with_nothing_it_converts_keeps_fp32_and_says_why(caplog):
    """A convolution-only model: dynamic quantization would return it unchanged under an
    int8 label; fit returns None so the script keeps its fp32 model, with the reason."""
    convs = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)).eval()
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        out = quantization.fit(convs, PostTrainingQuantConfig(approach="dynamic"))
    assert out is None
    assert "Sequential has none: nothing to quantize" in caplog.text
    assert "approach='static'" in caplog.text
