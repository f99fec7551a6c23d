"""SIGKILL at random moments of an in-place optimize on a multi-megabyte script: the script is
always the original or the complete rewrite, and the .bak is absent or the complete original."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import SAMPLES

KILLS = int(os.environ.get("NEURAL_CODER_KILLS", "20"))


def _big_script(folder: Path) -> Path:
    filler = 'DOC = """\n' + ("0123456789abcdef" * 4 + "\n") * 32_000 + '"""\n'  # 2 MB
    path = folder / "big.py"
    path.write_text(filler + (SAMPLES / "flat_script.py").read_text())
    return path


def _optimize(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "neural_coder", "optimize", str(path), "--approach", "pruning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_killed_run_leaves_the_original_or_the_whole_rewrite(tmp_path):
    script = _big_script(tmp_path)
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
        script.with_name("big.py.bak").unlink(missing_ok=True)
        process = _optimize(script)
        time.sleep(rng.uniform(0.2, 1.05) * duration)  # most of a run is reading; the end writes
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = script.read_bytes()
        assert now in (original, rewritten)
        outcomes["original" if now == original else "rewritten"] += 1
        backup = script.with_name("big.py.bak")
        assert not backup.exists() or backup.read_bytes() == original
    assert sum(outcomes.values()) == KILLS
    # the next complete run clears what killed runs left half-written beside the script
    script.write_bytes(original)
    assert _optimize(script).wait() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.py", "big.py.bak"]
