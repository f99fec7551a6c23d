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


@pytest.mark.parametrize("approach", ["ptq-dynamic", "bf16"])
def test_a_rebuilt_model_is_no_reload_of_the_trained_one(tmp_path, monkeypatch, approach):
    """`net = build_net()` after the first training builds a fresh model that a second
    timing run trains from scratch: the fit goes after the first training (the model
    the script evaluates and saves), not after the rebuild, where it would convert an
    untrained model that is then trained in int8 / bf16."""
    monkeypatch.setenv("STEPS", "6")
    script = rewrite(tmp_path, "rebuild_compare.py", approach)
    text = script.read_text()
    assert text.index(".fit(") < text.index("# a fresh model for the second timing run")
    run, summary = run_script(script)
    assert "median step" in run.stdout  # the second run trained the fresh fp32 model
    state = torch.load(tmp_path / "net.pt", weights_only=False)
    if approach == "ptq-dynamic":
        assert summary["quantized_modules"] >= 1, summary  # tuning may keep one in fp32
        assert any("_packed_params" in key for key in state), list(state)
    else:  # bf16 is kept only where it measured faster; a tiny MLP may stay fp32
        assert summary["bf16_modules"] > 0 or summary["bf16_refused"], summary
    # the fit measured the trained model, and the script's evaluation sees its result
    final = (
        summary["final_metric"]
        if summary["final_metric"] is not None
        else summary["baseline_metric"]
    )
    assert summary["baseline_metric"] > 0.6, summary  # trained (an untrained net: ~0.5)
    assert printed(run.stdout, r"trained accuracy: ([0-9.]+)") == pytest.approx(final, abs=1e-4)


def test_a_model_rebuilt_before_anything_reads_it_is_refused(tmp_path):
    """Nothing reads the trained model before `net = build_net()` replaces it: refused
    with the rebuild named, the file untouched."""
    script = tmp_path / "rebuild_compare.py"
    source = script_path("rebuild_compare.py").read_text()
    source = source.replace('print(f"trained accuracy: {accuracy(net):.4f}")\n', "").replace(
        'torch.save(net.state_dict(), "net.pt")\n', ""
    )
    script.write_text(source)
    result = run_cli("optimize", script, "--approach", "ptq-dynamic")
    assert result.exit_code == 1, result.output
    assert "builds a new, untrained net (net = build_net())" in result.output, result.output
    assert script.read_text() == source
