"""Post-training data and models found where real scripts keep them, run end to end.

Loaders stored on `self` by another method of a recipe class, loaders handed back as a
tuple by a helper (through `accelerator.prepare`), a model that one function builds
and another evaluates, and a base checkpoint always loaded by the recipe's
`_setup_model` (so the default distillation teacher is a trained copy), and a loader an
evaluation builds inside itself (detectron2's do_test), built again at the fit. Each sample
is rewritten with the CLI and run on tiny synthetic data; the checks read the
runtime's summary and the weights the script saved.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch

from tests.conftest import script_path
from tests.e2e.runner import run_script
from tests.e2e.test_final_model_placement import int8_modules_saved, printed, rewrite

pytestmark = pytest.mark.e2e


def write_base_checkpoint(tmp_path: Path) -> None:
    """The recipe's base model: the sample's own class, saved as a state dict."""
    namespace = runpy.run_path(str(script_path("recipe_base_checkpoint.py")), run_name="base")
    torch.manual_seed(1)
    torch.save(namespace["TinyClassifier"]().state_dict(), tmp_path / "base_model.pt")


def test_recipe_loader_on_self_calibrates_the_trained_model(tmp_path):
    """`self._val_dataloader = self._setup_data(...)` in setup(): the fit after train()'s
    epoch loop calibrates with it, and the recipe's accuracy and save see int8."""
    write_base_checkpoint(tmp_path)
    script = rewrite(tmp_path, "recipe_base_checkpoint.py", "ptq-static")
    assert "calib_dataloader=self._val_dataloader" in script.read_text()
    run, summary = run_script(script, "--epochs", "1")
    assert summary["quantized_modules"] == 3, summary  # two encoder Linears and the output
    assert "epoch 0 loss" in run.stdout and "held-out accuracy" in run.stdout
    assert int8_modules_saved(tmp_path / "finetuned.pt") == 3


def test_recipe_base_checkpoint_makes_the_default_teacher(tmp_path):
    """The base state dict is always loaded by _setup_model (the resume load is only
    conditional): the frozen copy is a trained teacher, and it distils."""
    write_base_checkpoint(tmp_path)
    script = rewrite(tmp_path, "recipe_base_checkpoint.py", "distillation")
    run, summary = run_script(script, "--epochs", "1")
    assert summary["distillation_steps"] > 0, summary
    assert "held-out accuracy" in run.stdout


def test_loaders_returned_by_a_helper_calibrate_and_tune(tmp_path):
    """`train_dataloader, val_dataloader = get_dataloaders(...)`: calibrated with the
    validation loader, tuned with validate(), and the saved weights are int8."""
    script = rewrite(tmp_path, "helper_loaders_fit.py", "ptq-static")
    run, summary = run_script(script, "--epochs", "1")
    assert summary["quantized_modules"] == 2 and summary["trials"], summary
    assert printed(run.stdout, r"final val loss: ([0-9.]+)") == pytest.approx(
        summary["final_metric"], abs=1e-4
    )
    assert int8_modules_saved(tmp_path / "regressor.pt") == 2


def test_model_built_by_the_caller_of_the_evaluation(tmp_path):
    """extract_features(model, loader) runs the model that extract_feature_pipeline()
    builds: the fit goes there, before the first extraction, so both extractions and the
    dumped weights are the int8 model's."""
    script = rewrite(tmp_path, "feature_knn_eval.py", "ptq-static")
    run, summary = run_script(script, "--multiscale", "--dump_model", "backbone.pt")
    assert summary["quantized_modules"] == 2, summary
    assert "10-NN top1" in run.stdout
    assert int8_modules_saved(tmp_path / "backbone.pt") == 2


def test_a_loader_the_evaluation_builds_inside_calibrates_the_fit(tmp_path, monkeypatch):
    """detectron2 style: do_test(cfg, model) builds a loader per test set inside itself and
    the model takes lists of per-image dicts. The fit builds the first test set's loader
    with the same builder, calibrates on those lists, and both test sets are evaluated
    and the weights saved in int8."""
    script = rewrite(tmp_path, "builder_loader_eval.py", "ptq-static")
    # each list goes to the model whole, as the training loop's `model(data)` passes it
    assert (
        "((data,),) for data in build_test_loader(cfg, next(iter(cfg.DATASETS.TEST)))"
        in script.read_text()
    )
    monkeypatch.setenv("MAX_ITER", "8")
    run, summary = run_script(script)
    assert summary["quantized_modules"] == 3, summary  # two convolutions and the head
    assert printed(run.stdout, r"shapes_val: accuracy ([0-9.]+)") >= 0.9, run.stdout
    assert printed(run.stdout, r"shapes_test: accuracy ([0-9.]+)") >= 0.9, run.stdout
    assert int8_modules_saved(tmp_path / "output" / "model_final.pth") == 3
