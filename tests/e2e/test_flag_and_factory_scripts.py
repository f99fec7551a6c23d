"""Training styles met in public examples, rewritten and run: one epoch function for
training and evaluation chosen by a flag, a trainer class whose step closures come from
factory methods, a timm-style step that is a loss-scaler call or a plain backward and
step, a manual SGD update with no optimizer object, and a trainer whose `--evaluate`
path evaluates a resumed checkpoint."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import rewrite_and_run, rewrite_and_run_script, run_script, sample_module

pytestmark = pytest.mark.e2e


def test_flag_epoch_fn_compresses_in_the_training_calls(tmp_path):
    summary = rewrite_and_run(tmp_path, "flag_epoch_fn.py", "--approach", "pruning+qat")
    # 256 / 32 = 8 steps an epoch, 3 epochs: the evaluation calls step nothing
    assert summary["pruning_steps_seen"] == 24
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert summary["quantized_modules"] == 3


def test_flag_epoch_fn_distils_the_training_batches_only(tmp_path):
    summary = rewrite_and_run(tmp_path, "flag_epoch_fn.py", "--approach", "distillation")
    # the evaluation call runs the same hook under set_grad_enabled(False): not distilled
    assert summary["distillation_steps"] == 24


def test_step_factory_trainer(tmp_path):
    summary = rewrite_and_run(tmp_path, "step_factory_trainer.py", "--approach", "pruning+qat")
    assert summary["pruning_steps_seen"] == 48  # 256 / 16 batches, 3 epochs
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert summary["quantized_modules"] == 3


def test_plain_path_of_a_scaler_step_prunes(tmp_path):
    # without --amp the loss scaler is None: the plain backward and step carry the hooks
    summary = rewrite_and_run(tmp_path, "scaler_or_plain_step.py", "--approach", "pruning")
    assert summary["pruning_steps_seen"] == 24
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)


def test_manual_update_without_optimizer_trains_qat(tmp_path):
    summary = rewrite_and_run(tmp_path, "manual_update_lm.py", "--approach", "pruning+qat")
    assert summary["pruning_steps_seen"] == 24  # 12 windows of 8 tokens, 2 epochs
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert summary["quantized_modules"] == 2


def test_evaluate_path_quantizes_the_resumed_checkpoint(tmp_path):
    script = tmp_path / "evaluate_flag_train.py"
    script.write_text(script_path("evaluate_flag_train.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-static")
    assert result.exit_code == 0, result.output
    # training: nothing reads the model after the epoch loop, so the fit follows it and
    # saves the int8 model
    _, trained = run_script(script)
    assert trained["quantized_modules"] == 4
    assert (tmp_path / "neural_coder_output" / "ptq-static" / "best_model.pt").is_file()
    run, summary = run_script(script, "--evaluate", "--resume", "model_best.pth.tar")
    assert summary["quantized_modules"] == 4
    assert "Acc@1" in run.stdout


def test_step_factory_functions_compress_the_training_batches_only(tmp_path):
    """Closures made by factory functions, one `mini_batch()` loop for both steps: the
    training closure carries the optimizer-step hooks, so only the 16 training batches
    of each of the 3 epochs count (the 2 validation batches do not)."""
    summary = rewrite_and_run(tmp_path, "step_factory_functions.py", "--approach", "pruning+qat")
    assert summary["pruning_steps_seen"] == 48
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert summary["quantized_modules"] == 3
    saved = torch.load(tmp_path / "step_factory_model.pt", weights_only=False)
    assert any(key.endswith("scale") for key in saved), "the saved model is not the QAT one"


def test_step_factory_functions_distil_the_training_batches_only(tmp_path):
    summary = rewrite_and_run(tmp_path, "step_factory_functions.py", "--approach", "distillation")
    assert summary["distillation_steps"] == 48


def test_registry_built_model_of_an_eval_script_is_quantized_after_its_load(tmp_path):
    sample = sample_module("registry_eval_ckpt.py")
    weights = sample.ARCHS["convnet"](num_classes=10).state_dict()
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in weights.items()}, "epoch": 5},
        tmp_path / "checkpoint_best.pth",
    )
    run, summary = rewrite_and_run_script(
        tmp_path, "registry_eval_ckpt.py", "--approach", "ptq-static"
    )
    assert summary["quantized_modules"] >= 3  # two convolutions and the classifier
    # tuned with the script's own evaluation (its first value), which then ran on int8
    assert summary["final_metric"] is not None
    assert "top1" in run.stdout


def test_a_recurrent_model_whose_weights_are_all_int8_still_makes_its_state(tmp_path):
    text = script_path("rnn_sentiment_eval.py").read_text()
    classes: dict = {}  # the module-level script loads its weights: run its classes only
    exec(text.split("\ngenerator = ")[0], classes)
    net = classes["SentimentRNN"](300, 1, embedding_dim=32, hidden_dim=48, n_layers=2)
    torch.save(net.state_dict(), tmp_path / "sentiment_rnn.pt")
    # init_hidden reads next(self.parameters()) of the int8 model (embedding, LSTM, Linear)
    run, summary = rewrite_and_run_script(
        tmp_path, "rnn_sentiment_eval.py", "--approach", "ptq-dynamic"
    )
    assert summary["quantized_modules"] >= 3
    assert "Test accuracy" in run.stdout
