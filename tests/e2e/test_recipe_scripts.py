"""Scripts rewritten with `optimize --recipe` run, and their summaries show each stage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, script_path
from tests.e2e.runner import run_script


def _rewrite_and_run(tmp_path: Path, recipe: str, *options: str) -> dict:
    """Rewrite the sample in `tmp_path` with `--recipe` given relative to it (the script
    reads the recipe from that path when it runs there), run it, return its summary."""
    script = tmp_path / "recipe_cnn_train.py"
    script.write_text(script_path("recipe_cnn_train.py").read_text())
    shutil.copy(ROOT / "samples" / "recipes" / recipe, tmp_path / recipe)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = run_cli("optimize", script.name, "--recipe", recipe, *options)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    assert f'"{recipe}"' in script.read_text()
    return run_script(script)[1]


def test_agp_group_lasso_recipe_prunes_and_decays_the_lr(tmp_path: Path) -> None:
    summary = _rewrite_and_run(tmp_path, "agp_group_lasso.yaml")
    assert summary["techniques"] == ["recipe"]
    assert all(0.84 <= s <= 0.86 for s in summary["per_layer_sparsity"].values())
    assert summary["learning_rate_last"] < 0.05
    pruner, regularizer, lr = summary["recipe_stages"]
    assert "fired at epochs 0-5 (6x)" in pruner and "regularized steps" in regularizer
    assert "stepped 2 time(s), lr 0.05 -> 0.032" in lr


def test_multishot_recipe_distills_then_prunes_then_quantizes(tmp_path: Path) -> None:
    summary = _rewrite_and_run(tmp_path, "multishot.yaml", "--teacher", "copy")
    assert summary["distillation_steps"] == 2 * 8  # two epochs of 8 batches
    assert summary["quantized_modules"] >= 2  # conv1, conv2 and fc1; the head stays float
    assert summary["weights_zero"] >= 0.45 * summary["weights_total"]  # masks survived int8
    kd, prune, qat = summary["recipe_stages"]
    assert "16 distillation steps" in kd
    assert "fired at epochs 2-4" in prune and "sparsity 0.500" in prune
    assert "fake quantization from epoch 5" in qat
