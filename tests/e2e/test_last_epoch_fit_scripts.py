"""A script that evaluates in each epoch and reads the model nowhere after the loop:
the fit runs in the last epoch, that epoch's evaluation measures the int8 model, and the
int8 model is saved (the epoch's own checkpoints hold fp32 weights: it was measured, then
lost).

The rewritten sample is imported by a small driver that wraps its `evaluate()` to record
the module types of every model it is handed, then runs its `main()`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli, script_path
from tests.e2e.runner import run_script

pytestmark = pytest.mark.e2e

DRIVER = """\
import json
import sys

import epoch_eval_loop as script

measured = []
evaluate = script.evaluate


def recording_evaluate(model, loader):
    measured.append(sorted({type(m).__module__ for m in model.modules()}))
    return evaluate(model, loader)


script.evaluate = recording_evaluate
sys.argv = ["epoch_eval_loop.py", "--epochs", "2"]
script.main()
with open("measured.json", "w") as f:
    json.dump(measured, f)
"""


def is_int8(modules: list[str]) -> bool:
    return any(".quantized." in name for name in modules)


def test_the_last_epoch_evaluates_the_int8_model(tmp_path: Path):
    script = tmp_path / "epoch_eval_loop.py"
    script.write_text(script_path("epoch_eval_loop.py").read_text())
    result = run_cli("optimize", script, "--approach", "ptq-static")
    assert result.exit_code == 0 and "Transformed" in result.output, result.output
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    run, summary = run_script(driver)
    assert summary["quantized_modules"] == 3, summary  # conv, fc1, fc2
    measured = json.loads((tmp_path / "measured.json").read_text())
    # epoch 1: the fp32 model; then the fit's baseline and trials; epoch 2: the int8 model
    assert not is_int8(measured[0]), measured[0]
    assert is_int8(measured[-1]), measured[-1]
    assert len(measured) >= 3
    # both epochs ran; the last one printed the tuned int8 model's accuracy
    printed = re.findall(r"epoch (\d+): loss [0-9.]+ val accuracy ([0-9.]+)", run.stdout)
    assert [e for e, _ in printed] == ["1", "2"], run.stdout[-2000:]
    assert float(printed[-1][1]) == pytest.approx(summary["final_metric"], abs=1e-4)
    # the evaluated int8 model is the one saved, and loads back as int8
    saved = tmp_path / "neural_coder_output" / "ptq-static"
    reload = (
        "import sys; import epoch_eval_loop as s; from neural_coder.runtime import load\n"
        f"m = load({str(saved)!r}, s.SmallNet())\n"
        "print(sorted({type(x).__module__ for x in m.modules()}))"
    )
    (tmp_path / "reload.py").write_text(reload)
    loaded = run_script(tmp_path / "reload.py")[0]
    assert ".quantized." in loaded.stdout, loaded.stdout
