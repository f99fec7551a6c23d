"""The four multi-shot rows of INC's orchestration table, run end to end: the sample is
rewritten by the CLI, run, and each stage's effect is read back from the summary (and,
for a pipeline that ends with a fit, from the model the script saves)."""

from __future__ import annotations

import re

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run, run_script

SAMPLE = "multishot_cnn.py"
STEPS_PER_EPOCH = 8  # 256 samples in batches of 32
EPOCHS = 3  # the sample's default


def stage(summary: dict, kind: str) -> dict:
    return next(s for s in summary["stages"] if s["stage"] == kind)


@pytest.mark.parametrize(
    ("approach", "split"),
    [
        ("pruning>qat", {"pruning": [0, 1], "qat": [2, 2]}),
        ("distillation-then-qat", {"distillation": [0, 1], "qat": [2, 2]}),
        ("distillation>pruning", {"distillation": [0, 1], "pruning": [2, 2]}),
        ("distillation>pruning>qat", {"distillation": [0, 0], "pruning": [1, 1], "qat": [2, 2]}),
    ],
)
def test_training_stages_each_do_their_work_in_their_epochs(tmp_path, approach, split):
    summary = rewrite_and_run(tmp_path, SAMPLE, "--approach", approach, "--teacher", "copy")
    assert [s["stage"] for s in summary["stages"]] == list(split)
    for kind, epochs in split.items():
        row = stage(summary, kind)
        assert row["epochs"] == epochs
        assert row["optimizer_steps"] == (epochs[1] - epochs[0] + 1) * STEPS_PER_EPOCH
    if "distillation" in split:
        row = stage(summary, "distillation")
        # the teacher's loss in the distillation epochs, never after them
        assert row["distillation_steps"] == row["optimizer_steps"]
        assert summary["distillation_steps"] == row["distillation_steps"]
    if "pruning" in split:
        row = stage(summary, "pruning")
        assert row["pruning_target_reached"] and row["sparsity"] >= 0.5 - 1e-6
        # the masks outlive the stage: the final model keeps the zeros
        assert summary["weights_zero"] / summary["weights_total"] >= 0.4
    if "qat" in split:
        assert stage(summary, "qat")["quantized_modules"] >= 3
        assert summary["quantized_modules"] >= 3
    else:
        assert summary["quantized_modules"] == 0


def _int8_weights(tmp_path) -> list[torch.Tensor]:
    """The quantized weights in the state dict the script saved after the fit."""
    state = torch.load(tmp_path / "final_model.pt", weights_only=False)
    found = []
    for value in state.values():
        value = value[0] if isinstance(value, tuple) else value  # a Linear's packed params
        if isinstance(value, torch.Tensor) and value.is_quantized:
            found.append(value)
    return found


def test_pruning_then_static_ptq_from_a_config(tmp_path):
    """`pipeline:` in --config; the fit quantizes the pruned model, and its result is the
    model the script evaluates and saves afterwards."""
    config = tmp_path / "compress.yaml"
    config.write_text(
        "pipeline: [pruning, ptq-static]\n"
        "pruning: {target_sparsity: 0.5}\n"
        "ptq: {tolerable_loss: 0.5, max_trials: 2}\n"
    )
    summary = rewrite_and_run(tmp_path, SAMPLE, "--config", str(config))
    # the last summary is the fit's: int8 modules, on weights the pruning stage zeroed
    assert summary["approach"] == "post_training_static_quant"
    assert summary["quantized_modules"] >= 3
    assert summary["weights_zero"] / summary["weights_total"] >= 0.4
    weights = _int8_weights(tmp_path)
    assert len(weights) >= 3, "the saved model is not the quantized one"
    zeros = sum(int((w.dequantize() == 0).sum()) for w in weights)
    assert zeros / sum(w.numel() for w in weights) > 0.3


def test_distillation_then_pruning_then_dynamic_ptq_with_a_split(tmp_path):
    script = tmp_path / SAMPLE
    script.write_text(script_path(SAMPLE).read_text())
    result = run_cli(
        "optimize",
        script,
        "-a",
        "distillation then pruning then ptq-dynamic",
        "--stage-epochs",
        "2,1",
        "--teacher",
        "copy",
    )
    assert result.exit_code == 0, result.output
    run, summary = run_script(script)
    log = run.stderr
    # the training summary (logged), then the fit's (the JSON written last)
    assert re.search(
        r"stage 1\s+distillation \(epochs 0-1\): optimizer_steps 16, distillation_steps 16", log
    )
    assert re.search(r"stage 2\s+pruning \(epochs 2-2\): optimizer_steps 8, sparsity 0\.5", log)
    assert summary["approach"] == "post_training_dynamic_quant"
    assert summary["quantized_modules"] >= 2
    assert _int8_weights(tmp_path), "the saved model is not the quantized one"
    accuracy = float(re.search(r"accuracy ([0-9.]+)", run.stdout).group(1))
    assert accuracy == pytest.approx(summary["final_metric"])  # evaluated: the fit's model


def test_a_split_known_only_after_accelerate_prepare(tmp_path):
    """accelerate_loop.py learns its run length after `accelerator.prepare`: the manager is
    prepared before it, and `fit_pipeline` gives the split right before the epoch loop."""
    summary = rewrite_and_run(tmp_path, "accelerate_loop.py", "--approach", "pruning>qat")
    assert "fit_pipeline(" in (tmp_path / "accelerate_loop.py").read_text()
    pruning, qat = summary["stages"]
    assert pruning["epochs"] == [0, 1] and qat["epochs"] == [2, 2]
    assert pruning["pruning_target_reached"] and qat["quantized_modules"] > 0
