"""Multi-shot pipelines (`PipelineConfig`): each stage's hooks run in its epochs only, the
pruning masks stay through the later stages, QAT learns its scales in its own stage,
and the summary shows what each stage did."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.ao.quantization import FakeQuantizeBase

from neural_coder.runtime.config import (
    ConfigValueError,
    DistillationConfig,
    KnowledgeDistillationLossConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.pipeline import PipelineConfig, even_split, fit_pipeline
from neural_coder.runtime.summary import format_table
from neural_coder.runtime.training import prepare_compression

STEPS = 4  # optimizer steps per epoch


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4)
    )


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(8, 16, generator=g), torch.randint(0, 4, (8,), generator=g))
        for _ in range(STEPS)
    ]


def pruning_conf() -> WeightPruningConfig:
    return WeightPruningConfig(target_sparsity=0.5, pattern="1x1", pruning_type="magnitude")


def zeros(model: nn.Module, name: str = "2") -> float:
    weight = dict(model.named_modules())[name].weight
    weight = weight() if callable(weight) else weight  # a quantized Linear's weight()
    if weight.is_quantized:
        weight = weight.dequantize()
    return float((weight == 0).float().mean())


def fake_quant_on(model: nn.Module) -> bool:
    flags = [
        bool(m.fake_quant_enabled[0]) for m in model.modules() if isinstance(m, FakeQuantizeBase)
    ]
    assert flags, "the model is not QAT-prepared"
    return all(flags)


def train(cm, epochs: int, first_epoch: int = 0, watch=None) -> list[dict]:
    """A plain loop with the INC 2.x hooks; per epoch: whether the hook changed the loss."""
    cm.callbacks.on_train_begin()
    model = cm.model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    seen = []
    for epoch in range(first_epoch, first_epoch + epochs):
        cm.callbacks.on_epoch_begin(epoch)
        changed = 0
        for step, (x, y) in enumerate(batches()):
            cm.callbacks.on_step_begin(step)
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
            total = cm.callbacks.on_after_compute_loss(x, out, loss)
            changed += total is not loss
            optimizer.zero_grad()
            total.backward()
            cm.callbacks.on_before_optimizer_step()
            optimizer.step()
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
        cm.callbacks.on_epoch_end()
        seen.append({"distilled": changed, **(watch(cm) if watch else {})})
    cm.callbacks.on_train_end()
    return seen


def test_even_split_and_checks():
    assert even_split(5, 3) == [2, 2, 1] and even_split(4, 2) == [2, 2]
    stages = [pruning_conf(), QuantizationAwareTrainingConfig()]
    assert PipelineConfig(stages, epochs=3).stage_epochs == [2, 1]
    assert PipelineConfig(stages, epochs=3, stage_epochs=[1, 2]).starts == [0, 1]
    deferred = prepare_compression(net(), PipelineConfig(stages))
    deferred.callbacks.on_train_begin()
    with pytest.raises(ConfigValueError, match="fit_pipeline"):
        deferred.callbacks.on_epoch_begin(0)
    with pytest.raises(ConfigValueError, match="at least one epoch per stage"):
        PipelineConfig(stages, epochs=1)
    with pytest.raises(ConfigValueError, match="one per stage"):
        PipelineConfig(stages, stage_epochs=[1, 0])
    with pytest.raises(ConfigValueError, match="last stage"):
        prepare_compression(net(), PipelineConfig(stages[::-1], epochs=2))
    with pytest.raises(ConfigValueError, match="at most one config of each kind"):
        prepare_compression(net(), PipelineConfig([pruning_conf(), pruning_conf()], epochs=2))


def test_distillation_then_pruning_then_qat_each_in_its_epochs():
    model = net()
    teacher = copy.deepcopy(model)
    confs = PipelineConfig(
        [
            DistillationConfig(teacher, KnowledgeDistillationLossConfig()),
            pruning_conf(),
            QuantizationAwareTrainingConfig(),
        ],
        epochs=6,
        steps_per_epoch=STEPS,
    )
    cm = prepare_compression(model, confs)

    def watch(cm):
        return {"zeros": zeros(cm.model.model), "fake_quant": fake_quant_on(cm.model.model)}

    seen = train(cm, 6, watch=watch)
    # distillation: its two epochs only
    assert [e["distilled"] for e in seen] == [STEPS, STEPS, 0, 0, 0, 0]
    # pruning: nothing before its stage, the target within it, kept through QAT
    assert seen[0]["zeros"] == seen[1]["zeros"] == 0.0
    assert seen[3]["zeros"] >= 0.45
    assert seen[5]["zeros"] == pytest.approx(seen[3]["zeros"], abs=0.02)
    # QAT: prepared at on_train_begin, fake quantization on in its stage only
    assert [e["fake_quant"] for e in seen] == [False] * 4 + [True] * 2
    final = cm.model.model
    assert cm.summary["quantized_modules"] >= 3
    assert zeros(final) >= 0.45  # the int8 model keeps the pruned weights at zero
    stages = cm.summary["stages"]
    assert [s["stage"] for s in stages] == ["distillation", "pruning", "qat"]
    assert [s["epochs"] for s in stages] == [[0, 1], [2, 3], [4, 5]]
    assert [s["optimizer_steps"] for s in stages] == [2 * STEPS] * 3
    assert stages[0]["distillation_steps"] == 2 * STEPS
    assert stages[1]["pruning_target_reached"] and stages[1]["sparsity"] >= 0.45
    assert stages[2]["quantized_modules"] == cm.summary["quantized_modules"]
    assert cm.summary["techniques"] == "distillation>pruning>qat"
    table = format_table(cm.summary)
    assert "stage 2" in table and "pruning (epochs 2-3)" in table


def test_pruning_stage_fits_its_schedule_from_the_epochs_before_it():
    """No steps_per_epoch given: measured on the distillation epochs, the pruning schedule
    ends inside its own stage (80 % of it), whatever the configured end_step."""
    model = net()
    confs = PipelineConfig(
        [
            DistillationConfig(copy.deepcopy(model), KnowledgeDistillationLossConfig()),
            pruning_conf(),
        ],
        stage_epochs=[1, 3],
    )
    cm = prepare_compression(model, confs)
    seen = train(cm, 4, first_epoch=1, watch=lambda cm: {"zeros": zeros(cm.model.model)})
    assert [e["distilled"] for e in seen] == [STEPS, 0, 0, 0]  # epochs numbered from 1
    assert seen[0]["zeros"] == 0.0 and 0.0 < seen[1]["zeros"] < seen[3]["zeros"]
    pruner = cm.compressors[1].inner.pruners[0]
    assert pruner.schedule.end == int(0.8 * 3 * STEPS)
    assert cm.summary["stages"][1]["pruning_target_reached"]


def test_a_run_shorter_than_the_split_reports_the_stage_that_never_began(caplog):
    model = net()
    confs = PipelineConfig([pruning_conf(), QuantizationAwareTrainingConfig()], stage_epochs=[2, 2])
    cm = prepare_compression(model, confs)
    train(cm, 2)
    qat = cm.summary["stages"][1]
    assert qat["epochs"] is None and "never began" in caplog.text
    assert "before this stage began" in qat["note"]


def test_the_split_given_later_by_fit_pipeline():
    """A script that knows its epoch count only after the model is prepared."""
    model = net()
    cm = prepare_compression(
        model, PipelineConfig([pruning_conf(), QuantizationAwareTrainingConfig()])
    )
    assert fit_pipeline(cm, epochs=3, steps_per_epoch=STEPS) == [2, 1]
    seen = train(cm, 3, watch=lambda cm: {"fake_quant": fake_quant_on(cm.model.model)})
    assert [e["fake_quant"] for e in seen] == [False, False, True]
    assert [s["epochs"] for s in cm.summary["stages"]] == [[0, 1], [2, 2]]
    assert cm.compressors[0].inner.pruners[0].schedule.end == int(0.8 * 2 * STEPS)
    with pytest.raises(RuntimeError, match="after the first epoch"):
        fit_pipeline(cm, epochs=4)
