"""Small GPT-style trainers whose evaluation is `estimate_loss()`, reading the model from
the scope of its call and returning one loss per split, rewritten for a post-training fit
and run: the fit tunes on the candidate's held-out loss (lower is better) and, when the
candidate loses more than the criterion allows, keeps the fp32 model, as the runtime's
`fit` defines (it returns None)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script


def rewrite(tmp_path: Path, name: str, approach: str, *options: str) -> Path:
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    result = run_cli("optimize", script, "--approach", approach, *options)
    assert result.exit_code == 0, result.output
    assert "its 'val' entry; accuracy-aware tuning" in result.output, result.output
    assert "lower is better" in result.output
    return script


def int8_weights(path: Path) -> bool:
    state = torch.load(path, weights_only=False)
    return any(
        "packed" in key or "_scale" in key or "scale" == key.rsplit(".", 1)[-1] for key in state
    )


def test_a_nested_estimate_loss_tunes_the_fit_on_the_candidate(tmp_path):
    script = rewrite(tmp_path, "split_loss_main.py", "ptq-dynamic")
    run, summary = run_script(script)
    assert summary["higher_is_better"] is False
    trials = summary["trials"]
    assert trials and summary["tuning"].startswith("goal met")
    # the evaluation is deterministic: the fp32 model would score the baseline exactly, so a
    # different score is the int8 candidate's
    assert trials[0]["accuracy"] != summary["baseline_metric"]
    assert trials[0]["accuracy"] <= summary["baseline_metric"] * 1.01
    assert summary["quantized_modules"] == 4  # the three Linears and the Embedding
    assert int8_weights(tmp_path / "lm.pt")  # the script saves the model it goes on with


def test_a_candidate_that_loses_too_much_keeps_the_fp32_model(tmp_path):
    config = tmp_path / "strict.yaml"
    config.write_text("ptq:\n  tolerable_loss: 0\n  max_trials: 1\n")
    script = rewrite(tmp_path, "split_loss_main.py", "ptq-dynamic", "--config", str(config))
    run, summary = run_script(script, "--steps", "20")
    (trial,) = summary["trials"]
    # lower is better: met only when the candidate's loss is not above the fp32 one
    assert trial["met"] == (trial["accuracy"] <= summary["baseline_metric"])
    if trial["met"]:
        assert summary["approach"] == "post_training_dynamic_quant"
        assert int8_weights(tmp_path / "lm.pt")
    else:  # the runtime's fit returns None: the script goes on with (and saves) fp32
        assert summary["approach"] is None and summary["tuning"].startswith("goal not met")
        assert not int8_weights(tmp_path / "lm.pt")
        assert "returning None (keep using the fp32 model)" in run.stderr + run.stdout


def test_a_module_level_estimate_loss_tunes_the_static_fit(tmp_path):
    script = rewrite(tmp_path, "char_split_train.py", "ptq-static")
    _, summary = run_script(script)
    assert summary["higher_is_better"] is False
    assert summary["trials"] and summary["baseline_metric"] > 0
    assert summary["tuning"].startswith(("goal met", "goal not met"))
