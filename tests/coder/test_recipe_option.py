"""`optimize --recipe`: the hooks a recipe needs, RecipeConfig with the script's optimizer
and epoch count, a no-op second run, and clear errors for bad recipes or option mixes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import ConfigError
from neural_coder.options import build_options
from neural_coder.report import Status
from tests.conftest import ROOT, run_cli, script_path

SAMPLES = ROOT / "samples"
GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize(
    ("recipe", "teacher", "golden"),
    [
        (
            "recipes/agp_group_lasso.yaml",
            None,
            "recipe_cnn_train.recipe_agp_group_lasso.runtime.py",
        ),
        ("recipes/multishot.yaml", "copy", "recipe_cnn_train.recipe_multishot.runtime.py"),
    ],
)
def test_recipe_rewrite_matches_reviewed_output_and_is_idempotent(
    monkeypatch: pytest.MonkeyPatch, recipe: str, teacher: str | None, golden: str
) -> None:
    monkeypatch.chdir(SAMPLES)
    options = build_options(None, None, {}, {"distillation": {"teacher": teacher}}, recipe=recipe)
    name = "recipe_cnn_train.py"
    rewritten, report = rewrite_source(Path(name), script_path(name).read_text(), options)
    assert report.status is Status.TRANSFORMED, report.message
    expected = GOLDEN / golden
    if os.environ.get("NEURAL_CODER_UPDATE_GOLDEN"):
        expected.write_text(rewritten)
    assert rewritten == expected.read_text()
    assert "RecipeConfig(" in rewritten and f'"{recipe}"' in rewritten
    assert "optimizer=optimizer" in rewritten and "epochs=num_epochs" in rewritten
    assert "on_epoch_begin(epoch)" in rewritten and "on_epoch_end()" in rewritten
    again, second = rewrite_source(Path(name), rewritten, options)
    assert second.status is Status.UNCHANGED and again == rewritten


def test_recipe_techniques_decide_the_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SAMPLES)
    assert build_options(None, None, {}, {}, recipe="recipes/multishot.yaml").approach == (
        "distillation",
        "pruning",
        "qat",
    )
    assert build_options(None, None, {"recipe": "recipes/agp_group_lasso.yaml"}, {}).approach == (
        "pruning",
    )


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (
            "version: 1\npruners:\n  p: {class: Magic}\n",
            [],
            "unknown class 'Magic'; supported pruners",
        ),
        (
            "version: 1\nlr_schedulers:\n  lr: {class: StepLR, step_size: 1}\n"
            "policies:\n  - lr_scheduler: {instance_name: lr}\n",
            [],
            "nothing would be compressed",
        ),
        ("version: 1\npolicies: []\n", ["--approach", "pruning"], "drop --approach"),
        ("version: 1\npolicies: []\n", ["--target", "inc"], "--recipe needs --target runtime"),
    ],
)
def test_bad_recipes_are_usage_errors_and_leave_the_script_alone(
    tmp_path: Path, text: str, args: list[str], message: str
) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    script = tmp_path / "train.py"
    original = script_path("recipe_cnn_train.py").read_text()
    script.write_text(original)
    result = run_cli("optimize", script, "--recipe", recipe, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert script.read_text() == original


def test_recipe_errors_name_the_file(tmp_path: Path) -> None:
    from neural_coder.recipe_options import recipe_techniques

    with pytest.raises(ConfigError, match="recipe file not found"):
        recipe_techniques(str(tmp_path / "none.yaml"))


def test_a_script_with_its_own_lr_schedule_gets_a_warning(tmp_path: Path) -> None:
    recipe = tmp_path / "lr.yaml"
    recipe.write_text(
        "version: 1\n"
        "pruners:\n  lvl: {class: SparsityLevelParameterPruner, levels: {'0\\.weight': 0.5}}\n"
        "lr_schedulers:\n  d: {class: ExponentialLR, gamma: 0.9}\n"
        "policies:\n  - pruner: {instance_name: lvl}\n  - lr_scheduler: {instance_name: d}\n"
    )
    options = build_options(None, None, {}, {}, recipe=str(recipe))
    name = "flat_script.py"
    rewritten, report = rewrite_source(Path(name), script_path(name).read_text(), options)
    assert report.status is Status.TRANSFORMED
    assert f"recipe {recipe} (pruning) hooks inserted" in report.message
    assert any("LR schedule of its own" in w for w in report.warnings)
    assert "RecipeConfig(" in rewritten and "optimizer=optim" in rewritten
    assert "epochs=3" in rewritten


@pytest.mark.parametrize(
    "golden",
    [
        "recipe_cnn_train.recipe_agp_group_lasso.runtime.py",
        "recipe_cnn_train.recipe_multishot.runtime.py",
    ],
)
def test_revert_gives_back_the_original_without_reading_the_recipe(golden: str) -> None:
    from neural_coder.revert import revert_source

    name = "recipe_cnn_train.py"
    original, report = revert_source(Path(name), (GOLDEN / golden).read_text())
    assert report.status is Status.TRANSFORMED and "--recipe recipes/" in report.message
    assert original == script_path(name).read_text()
