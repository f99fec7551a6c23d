"""A script that evaluates and saves a moving average of its model (YOLOv5's ModelEMA),
rewritten for pruning and run: the average it saves is as sparse as the model; for
quantization-aware training, int8 and reloadable as such."""

from __future__ import annotations

import pytest
import torch

from neural_coder.runtime.loading import structure_for
from tests.e2e.runner import rewrite_and_run, rewrite_and_run_script, sample_module

pytestmark = pytest.mark.e2e


def test_the_saved_moving_average_is_pruned(tmp_path):
    summary = rewrite_and_run(tmp_path, "ema_detector_train.py", "--approach", "pruning")
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert summary["averaged_copy_sparsity"] == [pytest.approx(summary["sparsity"], abs=1e-4)]
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    pruned = [saved["stem.weight"], saved["body.1.weight"]]  # the head is left out
    zeros = sum(int((w == 0).sum()) for w in pruned)
    assert zeros == sum(w.numel() for w in pruned) // 2, "the saved average is not pruned"


def test_shadow_weights_copied_into_the_model_before_saving_are_pruned(tmp_path):
    # diffusers' style: the average is a list of tensors from model.parameters(), copied
    # into the model at the end; without track_copy that copy undoes the pruning
    summary = rewrite_and_run(tmp_path, "shadow_ema_finetune.py", "--approach", "pruning")
    assert summary["averaged_copy_sparsity"] == [pytest.approx(0.5, abs=0.02)]
    saved = torch.load(tmp_path / "denoiser.pt", weights_only=True)
    pruned = [saved["0.weight"], saved["2.weight"]]  # the last Linear is the head
    zeros = sum(int((w == 0).sum()) for w in pruned)
    assert zeros == pytest.approx(sum(w.numel() for w in pruned) / 2, abs=8)


def test_a_trainer_that_steps_in_its_own_method_saves_a_pruned_average(tmp_path):
    # _setup_train() builds self.ema; self.optimizer_step() steps and updates it
    summary = rewrite_and_run(tmp_path, "setup_method_trainer.py", "--approach", "pruning")
    assert summary["pruning_steps_seen"] == 48
    assert summary["averaged_copy_sparsity"] == [pytest.approx(summary["sparsity"], abs=1e-4)]
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["ema"]
    pruned = [saved["backbone.0.weight"], saved["backbone.2.weight"]]
    assert sum(int((w == 0).sum()) for w in pruned) == sum(w.numel() for w in pruned) // 2


def test_a_hand_rolled_average_in_a_deep_copy_is_pruned(tmp_path):
    # ema_model = copy.deepcopy(model), moved by torch._foreach_lerp_ in update_ema():
    # before, nothing found it and the saved copy stayed dense
    summary = rewrite_and_run(tmp_path, "deepcopy_ema_train.py", "--approach", "pruning")
    assert summary["averaged_copy_sparsity"] == [pytest.approx(summary["sparsity"], abs=1e-4)]
    saved = torch.load(tmp_path / "ema_classifier.pt", weights_only=True)
    pruned = [saved["features.0.weight"], saved["features.2.weight"]]
    assert sum(int((w == 0).sum()) for w in pruned) == sum(w.numel() for w in pruned) // 2


@pytest.mark.parametrize(
    ("name", "saved_as"),
    [("deepcopy_ema_train.py", "ema_classifier.pt"), ("ema_detector_train.py", "last.pt")],
)
def test_post_training_quantization_quantizes_the_average_the_script_reads(
    tmp_path, name, saved_as
):
    # only the average is evaluated and saved after training: before, refused (and before
    # that, the fit quantized the model while the script saved the float average)
    run, summary = rewrite_and_run_script(tmp_path, name, "--approach", "ptq-static")
    assert summary["quantized_modules"] == 3
    saved = torch.load(tmp_path / saved_as, weights_only=False)
    state = saved.get("model", saved)
    assert any(key.endswith("_packed_params._packed_params") for key in state), list(state)
    assert "accuracy" in run.stdout


def _int8_reload(state: dict, model: torch.nn.Module) -> torch.nn.Module:
    net, weights = structure_for(state, model)
    net.load_state_dict(weights)
    return net


@pytest.mark.parametrize(
    ("name", "approach", "saved_as"),
    [
        ("ema_detector_train.py", "qat", "last.pt"),
        ("deepcopy_ema_train.py", "pruning+qat", "ema_classifier.pt"),
    ],
)
def test_quantization_aware_training_converts_the_average_the_script_saves(
    tmp_path, name, approach, saved_as
):
    # before: refused (QAT would have left the average float); now the average is built
    # from the fake-quant model and converted to int8 with it
    run, summary = rewrite_and_run_script(tmp_path, name, "--approach", approach)
    assert summary["quantized_modules"] == 3
    assert "accuracy" in run.stdout
    saved = torch.load(tmp_path / saved_as, weights_only=False)
    state = saved.get("model", saved)
    assert any(key.endswith("_packed_params._packed_params") for key in state), list(state)
    if name == "deepcopy_ema_train.py":
        # saved as `ema_model.state_dict()`, it reloads as int8 into a fresh float model
        # (the detector saves a deep copy cast to half, which keeps no int8 recipe)
        net, weights = structure_for(state, sample_module(name).Classifier())
        net.load_state_dict(weights)
        quantized = [m for m in net.modules() if isinstance(m, torch.ao.nn.quantized.Linear)]
        assert len(quantized) == 3
