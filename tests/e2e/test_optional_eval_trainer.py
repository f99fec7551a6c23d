"""A Trainer given `eval_dataset=... if evaluating else None` (the default run has none),
post-training quantized and run both ways: without an eval split the fit calibrates on
the train split and quantizes once (it failed in `trainer.evaluate()` before); with one
it tunes on `eval_loss`. Either way `trainer.save_model` writes the int8 model."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

NAME = "optional_eval_trainer.py"


@pytest.mark.parametrize(
    ("approach", "flags", "tuned"),
    [("ptq-static", [], False), ("ptq-dynamic", ["--eval_strategy", "epoch"], True)],
)
def test_fit_works_with_and_without_an_eval_split(tmp_path, approach, flags, tuned):
    script = tmp_path / NAME
    script.write_text(script_path(NAME).read_text())
    result = run_cli("optimize", script, "--approach", approach)
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    assert "may be None" in result.output
    run, summary = run_script(script, *flags)
    assert summary["quantized_modules"] >= 1, summary
    assert bool(summary["trials"]) is tuned, summary
    assert (tmp_path / "sft_out" / "best_model.pt").is_file()
