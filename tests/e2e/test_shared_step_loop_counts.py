"""A `mini_batch(device, loader, step_fn)` loop shared by the training and the validation
step (PyTorchStepByStep style), rewritten and run with the runtime's callbacks counted:
on_step_begin / on_step_end run once per training batch (16 per epoch, 3 epochs), never
on the 2 validation batches per epoch, because they sit inside the training closure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, script_path, teacher_args

# runs the script with CallBacks.on_step_begin / on_step_end counted, then writes the counts
COUNTING_RUNNER = """
import atexit, json, runpy, sys
from neural_coder.runtime.training import CallBacks
counts = {"begin": 0, "end": 0}
def counted(name, key):
    original = getattr(CallBacks, name)
    def wrapper(self, *args, **kwargs):
        counts[key] += 1
        return original(self, *args, **kwargs)
    setattr(CallBacks, name, wrapper)
counted("on_step_begin", "begin")
counted("on_step_end", "end")
atexit.register(lambda: open("counts.json", "w").write(json.dumps(counts)))
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def counted_run(tmp_path: Path, name: str, approach: str) -> dict:
    script = tmp_path / name
    script.write_text(script_path(name).read_text())
    options = ("--approach", approach)
    result = run_cli("optimize", script, *options, *teacher_args(name, options))
    assert result.exit_code == 0, result.output
    run = subprocess.run(
        [sys.executable, "-c", COUNTING_RUNNER, script.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((tmp_path / "counts.json").read_text())


@pytest.mark.parametrize(
    ("name", "approach"),
    [("step_factory_functions.py", "pruning"), ("step_factory_trainer.py", "distillation")],
)
def test_step_hooks_count_the_training_batches_only(tmp_path, name, approach):
    counts = counted_run(tmp_path, name, approach)
    assert counts == {"begin": 48, "end": 48}  # 256 / 16 training batches x 3 epochs
