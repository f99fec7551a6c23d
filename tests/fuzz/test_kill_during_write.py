"""SIGKILL at random moments of an in-place optimize on a multi-megabyte script and notebook: the
file is always the original or the complete rewrite, and the .bak is absent or the complete
original."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.conftest import SAMPLES

KILLS = int(os.environ.get("NEURAL_CODER_KILLS", "20"))


FILLER = ("0123456789abcdef" * 4 + "\n") * 32_000  # 2 MB


def _big_script(folder: Path) -> Path:
    path = folder / "big.py"
    path.write_text(f'DOC = """\n{FILLER}"""\n' + (SAMPLES / "flat_script.py").read_text())
    return path


def _big_notebook(folder: Path) -> Path:
    notebook = nbformat.read(SAMPLES / "notebooks" / "train_classifier.ipynb", as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(FILLER))
    path = folder / "big.ipynb"
    nbformat.write(notebook, path)
    return path


def _optimize(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "neural_coder", "optimize", str(path), "--approach", "pruning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("make", [_big_script, _big_notebook], ids=["script", "notebook"])
def test_a_killed_run_leaves_the_original_or_the_whole_rewrite(tmp_path, make):
    script = make(tmp_path)
    backup = script.with_name(script.name + ".bak")
    original = script.read_bytes()
    started = time.monotonic()
    assert _optimize(script).wait() == 0
    duration = time.monotonic() - started
    rewritten = script.read_bytes()
    assert rewritten != original
    rng = random.Random(20261206)
    outcomes = {"original": 0, "rewritten": 0}
    for _ in range(KILLS):
        script.write_bytes(original)
        backup.unlink(missing_ok=True)
        process = _optimize(script)
        time.sleep(rng.uniform(0.2, 1.05) * duration)  # most of a run is reading; the end writes
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = script.read_bytes()
        assert now in (original, rewritten)
        outcomes["original" if now == original else "rewritten"] += 1
        assert not backup.exists() or backup.read_bytes() == original
    assert sum(outcomes.values()) == KILLS
    # the next complete run clears what killed runs left half-written beside the script
    script.write_bytes(original)
    assert _optimize(script).wait() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [script.name, backup.name]
