"""Projects of several files, rewritten with the CLI and run: the hooks placed in
the module where the loop lives must drive the compression of the model that the
entry script builds."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SAMPLES, run_cli
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

CASES = [
    # (project, entry script, approach, files the rewrite changes, the weights the script saves)
    ("engine_project", "main.py", "pruning+qat", {"main.py", "engine.py"}, "checkpoint.pth"),
    (
        "package_layout",
        "train.py",
        "distillation+pruning",
        {"train.py", "utils/train_utils.py"},
        "classifier.pt",
    ),
    ("trainer_class_project", "main.py", "qat", {"trainer.py"}, "mlp.pt"),
    ("qa_trainer_project", "run_qa.py", "pruning", {"run_qa.py"}, None),
    # the script in tools/ imports the project's package from the folder above
    (
        "scripts_layout",
        "tools/train.py",
        "pruning+qat",
        {"tools/train.py", "lightnet/engine.py"},
        "tools/lightnet.pt",
    ),
]
TARGET_SPARSITY = 0.5


@pytest.mark.parametrize(("project", "entry", "approach", "changed", "saved"), CASES)
def test_rewritten_project_runs_and_compresses(tmp_path, project, entry, approach, changed, saved):
    folder = tmp_path / project
    shutil.copytree(SAMPLES / project, folder, ignore=shutil.ignore_patterns("__pycache__"))
    # the samples' models are built at random: distillation copies them on request only
    teacher = ["--teacher", "copy"] if "distillation" in approach else []
    result = run_cli(
        "optimize", folder / entry, "--approach", approach, "--target-sparsity", TARGET_SPARSITY,
        *teacher,
    )
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    backups = {str(p.relative_to(folder))[: -len(".bak")] for p in folder.rglob("*.bak")}
    assert backups == changed
    run, summary = run_script(folder / entry)
    techniques = approach.split("+")
    if "pruning" in techniques:
        assert summary["sparsity"] == pytest.approx(TARGET_SPARSITY, abs=0.02), summary
        assert summary["pruning_target_reached"] is True
    if "qat" in techniques:
        assert summary["quantized_modules"] > 0, summary
    if "distillation" in techniques:
        assert summary["distillation_steps"] > 0, summary
    if saved is not None:
        check_saved_weights(folder / saved, techniques)
    again = run_cli("optimize", folder / entry, "--approach", approach)
    assert again.exit_code == 0 and "Unchanged" in again.output, again.output


def check_saved_weights(path, techniques: list[str]) -> None:
    """The weights the script saves are the compressed model's: int8 packed weights
    after QAT, about the target's share of zeros in the pruned layers after pruning."""
    import torch

    state = torch.load(path, weights_only=False)
    state = state.get("model", state)
    if "qat" in techniques:
        assert any("_packed_params" in key for key in state), sorted(state)
    if "pruning" in techniques and "qat" not in techniques:
        weights = [t for k, t in state.items() if k.endswith("weight") and t.dim() >= 2]
        zeros = sum(int((w == 0).sum()) for w in weights)
        assert zeros / sum(w.numel() for w in weights) >= 0.8 * TARGET_SPARSITY


def test_eval_script_of_a_project_is_quantized_after_loading_its_weights(tmp_path, monkeypatch):
    """tools/evaluate.py imports a package whose modules hold training code it never
    runs (train_one_epoch, calibrate_head): it is an eval script, quantized after the
    checkpoint is loaded, and the module it saves is the int8 one."""
    import torch

    folder = tmp_path / "scripts_layout"
    shutil.copytree(SAMPLES / "scripts_layout", folder, ignore=shutil.ignore_patterns("__pycache__"))
    run_script(folder / "tools" / "train.py", "--epochs", "1")
    result = run_cli("optimize", folder / "tools" / "evaluate.py", "--approach", "ptq-dynamic")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    assert "followed lightnet/data.py, lightnet/engine.py, lightnet/models.py" in result.output
    assert {p.name for p in folder.rglob("*.bak")} == {"evaluate.py.bak"}
    run_script(folder / "tools" / "evaluate.py")
    monkeypatch.syspath_prepend(str(folder))  # the pickled module's class: lightnet.models
    saved = torch.load(folder / "tools" / "lightnet_eval.pt", weights_only=False)
    kinds = {type(m).__module__ for m in saved.modules()}
    assert any("quantized" in kind for kind in kinds), kinds
