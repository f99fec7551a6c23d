"""A script that evaluates and exports its trained model only when asked
(`--evaluate`, `--export PATH`), rewritten for static PTQ and run both ways: with a
flag the fit runs and the evaluation / export read the int8 model; with neither flag
nothing reads the model and no fit runs (before, it quantized and threw the result away)."""

from __future__ import annotations

import torch

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script


def test_the_fit_runs_only_on_the_runs_that_read_the_model(tmp_path):
    script = tmp_path / "flag_gated_eval.py"
    script.write_text(script_path("flag_gated_eval.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-static")
    assert result.exit_code == 0, result.output

    run, summary = run_script(script)
    assert summary == {}  # no fit, no compression summary
    assert "val accuracy" not in run.stdout and "epoch 2" in run.stdout

    run, summary = run_script(script, "--evaluate", "--export", "int8.pt")
    assert summary["quantized_modules"] == 2 and summary["trials"]
    assert "val accuracy" in run.stdout
    saved = torch.load(tmp_path / "int8.pt", weights_only=False)
    assert any(key.endswith("scale") for key in saved), "the export is not the int8 model"
