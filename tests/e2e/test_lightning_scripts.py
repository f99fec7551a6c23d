"""Lightning scripts (a LightningModule fitted by `Trainer.fit`, and a `LightningCLI` that
runs fit itself) rewritten, executed on tiny synthetic data, and checked from the summary."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytest.importorskip("lightning.pytorch")
pytestmark = pytest.mark.e2e

TARGET_SPARSITY = 0.5


def _rewrite(tmp_path, name: str, *options: str):
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    result = run_cli("optimize", script, "--target-sparsity", str(TARGET_SPARSITY), *options)
    assert result.exit_code == 0, result.output
    assert "Transformed" in result.output, result.output
    return script


def _check(summary: dict, approach: str) -> None:
    techniques = approach.split("+")
    if "pruning" in techniques:
        assert summary["sparsity"] == pytest.approx(TARGET_SPARSITY, abs=0.02), summary
        assert summary["pruning_target_reached"] is True
    if "qat" in techniques:
        assert summary["quantized_modules"] > 0
    if "distillation" in techniques:
        assert summary["distillation_steps"] > 0


@pytest.mark.parametrize(
    ("approach", "options"),
    [("pruning+qat", []), ("distillation", ["--teacher", "copy"])],
)
def test_trainer_fit_script(tmp_path, approach, options):
    script = _rewrite(tmp_path, "lightning_fit.py", "--approach", approach, *options)
    run, summary = run_script(script)
    _check(summary, approach)
    # 256 samples / batch 16 x 2 epochs: the hooks saw every optimizer step
    if "pruning" in approach:
        assert summary["pruning_steps_seen"] == 32
    assert "test_acc" in run.stdout  # the script's own test ran on the compressed module


@pytest.mark.parametrize(
    ("approach", "options"),
    [("pruning+qat", []), ("distillation", ["--teacher", "TinyConvNet()"])],
)
def test_lightning_cli_script(tmp_path, approach, options):
    script = _rewrite(tmp_path, "lightning_cli.py", "--approach", approach, *options)
    _, summary = run_script(script, "fit")
    _check(summary, approach)


def test_dynamic_quantization_after_trainer_fit_is_the_module_tested_and_saved(tmp_path):
    script = _rewrite(tmp_path, "lightning_fit.py", "--approach", "ptq-dynamic")
    run, summary = run_script(script, "--epochs", "1", "--save", "tested.pt")
    assert summary["approach"] == "post_training_dynamic_quant", summary
    assert summary["quantized_modules"] == 2  # encoder.fc1, encoder.fc2
    assert summary["baseline_metric"] is not None  # tuned with the script's trainer.test
    assert "test_acc" in run.stdout
    # the module the script tested and saved afterwards is the int8 one
    state = torch.load(tmp_path / "tested.pt", weights_only=False)
    packed = {k.split("._packed_params")[0] for k in state if "_packed_params" in k}
    assert packed == {"encoder.fc1", "encoder.fc2"}, sorted(state)
    assert not any(k.endswith("fc1.weight") for k in state)


def test_static_quantization_after_fit_keeps_the_lightning_module_the_trainer_tests(tmp_path):
    script = _rewrite(tmp_path, "lightning_datamodule.py", "--approach", "ptq-static")
    run, summary = run_script(script, "--max_epochs", "1", "--output", "tested.pt")
    assert summary["approach"] == "post_training_static_quant", summary
    # the LightningModule stays one: its backbone quantized at its name (an FX graph)
    assert summary["quantization_path"] == "fx_children"
    assert summary["baseline_metric"] is not None  # tuned with the script's trainer.test
    assert summary["quantized_modules"] == 2 and summary["fp32_ops"] == []
    assert "test results: [{" in run.stdout
    # the module the script tested and saved afterwards holds int8 weights
    state = torch.load(tmp_path / "tested.pt", weights_only=False)
    conv = state["backbone.conv.weight"]  # a quantized conv keeps a qint8 weight
    assert isinstance(conv, torch.Tensor) and conv.dtype == torch.qint8
    packed = {k.split("._packed_params")[0] for k in state if "_packed_params" in k}
    assert packed == {"backbone.head"}, sorted(state)  # a quantized Linear packs its weight
    assert "backbone.head.weight" not in state
    assert "backbone.conv_input_scale_0" in state  # the calibrated input quantization


def test_bf16_after_fit_is_the_module_the_trainer_tests(tmp_path, monkeypatch):
    # FORCE_BF16=1: convert even where this CPU has no bf16 instructions or no measured gain
    monkeypatch.setenv("FORCE_BF16", "1")
    script = _rewrite(tmp_path, "lightning_datamodule.py", "--approach", "bf16")
    run, summary = run_script(script, "--max_epochs", "1", "--output", "tested.pt")
    assert summary["precision"] == "bf16", summary
    assert summary["bf16_modules"] == 2 and summary["baseline_metric"] is not None
    assert "test results: [{" in run.stdout
    state = torch.load(tmp_path / "tested.pt", weights_only=True)
    assert {k: v.dtype for k, v in state.items()} == {
        f"backbone.{m}.{p}": torch.bfloat16 for m in ("conv", "head") for p in ("weight", "bias")
    }
