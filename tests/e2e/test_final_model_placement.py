"""Post-training `fit` where the trained model is final, run end to end.

Each sample is rewritten with the CLI and run on its tiny synthetic data; the checks
read the runtime's summary, the script's own printed numbers and the files it saved:
int8 modules present, the tuned metric measured on the model the script goes on
with, and the quantized weights in what it saves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e


def rewrite(tmp_path: Path, name: str, approach: str) -> Path:
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    return script


def printed(stdout: str, pattern: str) -> float:
    found = re.findall(pattern, stdout)
    assert found, f"the script did not print {pattern!r}:\n{stdout[-2000:]}"
    return float(found[-1])


def int8_modules_saved(path: Path) -> int:
    """Modules of a saved state dict that carry an output scale / zero point: the int8 ones."""
    state = torch.load(path, weights_only=False)
    return sum(1 for key in state if re.search(r"\.zero_point$", key))


def test_best_checkpoint_is_reloaded_before_it_is_quantized(tmp_path, monkeypatch):
    """Module-level training that keeps the best epoch as a checkpoint dict and loads it
    back: fit after the reload (not after the epoch loop, where the reload would load
    fp32 weights into the int8 model), tuned with evaluate() (not with the
    train_one_epoch() that also returns a number), and the saved model is int8."""
    monkeypatch.setenv("EPOCHS", "2")
    script = rewrite(tmp_path, "best_checkpoint_reload.py", "ptq-static")
    run, summary = run_script(script)
    assert summary["quantized_modules"] == 3, summary  # conv1, conv2, fc
    # the baseline is the reloaded best epoch, measured by evaluate()
    best = printed(run.stdout, r"best epoch \d+ \(accuracy ([0-9.]+)\)")
    assert summary["baseline_metric"] == pytest.approx(best, abs=1e-4)
    # the script's final evaluation and save see the quantized model
    assert printed(run.stdout, r"final accuracy: ([0-9.]+)") == pytest.approx(
        summary["final_metric"], abs=1e-4
    )
    assert int8_modules_saved(tmp_path / "model_final.pth") == summary["quantized_modules"]


@pytest.mark.parametrize("approach", ["ptq-static", "ptq-dynamic"])
def test_training_function_that_receives_the_loader(tmp_path, approach):
    """fit_model(model, train_loader, optimizer, epochs) holds the epoch loop: the fit goes
    after the call in main() (calibrated with a loader main() built), before the loop
    that evaluates two splits, and main() saves the int8 weights."""
    script = rewrite(tmp_path, "train_fn_loader_param.py", approach)
    run, summary = run_script(script, "--epochs", "2", "--out", "mlp.pt")
    assert summary["quantized_modules"] > 0, summary
    assert summary["trials"] and summary["baseline_metric"] is not None
    assert "epoch 2/2" in run.stdout  # trained first
    assert printed(run.stdout, r"val accuracy: ([0-9.]+)") == pytest.approx(
        summary["final_metric"], abs=1e-4
    )
    assert int8_modules_saved(tmp_path / "mlp.pt") == summary["quantized_modules"]


@pytest.mark.parametrize("approach", ["qat", "pruning+qat"])
def test_qat_prepared_where_main_hands_the_model_to_the_training_function(tmp_path, approach):
    """Issue 16: fit_model(model, ...) receives the model, main() evaluates and saves it
    afterwards: the manager is prepared in main() around the call, so the evaluation loop
    and the saved weights are the int8 model's."""
    script = rewrite(tmp_path, "train_fn_loader_param.py", approach)
    run, summary = run_script(script, "--epochs", "2", "--out", "mlp.pt")
    assert summary["quantized_modules"] == 3, summary  # the MLP's three Linears
    if approach == "pruning+qat":
        assert summary["pruning_target_reached"], summary
    assert "epoch 2/2" in run.stdout and "test accuracy" in run.stdout
    assert int8_modules_saved(tmp_path / "mlp.pt") == summary["quantized_modules"]


def test_trainer_metric_key_is_picked_from_what_the_run_returns(tmp_path):
    """compute_metrics returns `mse` for regression and `accuracy` for classification;
    the classification run tunes on eval_accuracy, higher is better."""
    script = rewrite(tmp_path, "glue_style_trainer.py", "ptq-dynamic")
    run, summary = run_script(script, "--output_dir", "out")
    assert summary["quantized_modules"] > 0 and summary["trials"], summary
    assert "metric eval_accuracy is better when higher" in run.stderr
    metrics = run.stdout.split("eval metrics: ")[-1]
    accuracy = printed(metrics, r"'eval_accuracy': ([0-9.]+)")
    assert accuracy == pytest.approx(summary["final_metric"], abs=1e-4)
    assert summary["final_metric"] >= summary["baseline_metric"] * 0.99


def test_model_resumed_from_a_checkpoint_dict_is_quantized_not_the_dict(tmp_path):
    """nanoGPT-style sampling: `checkpoint = torch.load(...)` is a dict, the model is built
    on one branch of `if init_from == ...` and filled from it: fit after the whole `if`,
    on the module; the samples are generated and the weights exported in int8."""
    script = rewrite(tmp_path, "generate_from_checkpoint.py", "ptq-dynamic")
    run, summary = run_script(script)
    # the MLP's two Linears and lm_head, and the two embeddings (int8 weight-only)
    assert summary["quantized_modules"] == 5, summary
    assert run.stdout.count("---------------") == 2
    saved = torch.load(tmp_path / "out" / "sampler.pt", weights_only=False)
    linears = [k for k in saved if k.endswith("_packed_params._packed_params")]
    embeddings = [k for k in saved if k.endswith("_packed_params._packed_weight")]
    assert len(linears) == 3 and sorted(embeddings) == [
        "pos._packed_params._packed_weight",
        "tok._packed_params._packed_weight",
    ]


def test_recipe_whose_loss_method_calls_the_model_is_pruned_and_quantized(tmp_path):
    """`loss = self._loss_step(batch)` with gradient accumulation: self._model (called
    inside _loss_step) is the model compressed; the recipe's held-out check and save see
    the int8, pruned model."""
    script = rewrite(tmp_path, "recipe_loss_step.py", "pruning+qat")
    run, summary = run_script(script)
    assert summary["quantized_modules"] == 3, summary  # two body Linears and the head
    assert summary["pruning_target_reached"] and summary["pruning_steps_seen"] > 0, summary
    assert "held-out accuracy" in run.stdout
    assert int8_modules_saved(tmp_path / "recipe_model.pt") == summary["quantized_modules"]
