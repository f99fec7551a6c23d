"""A second real client: Neovim, headless, applies a code action of `neural-coder lsp` and
writes the buffer; the file must equal what the CLI writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lsp.helpers import SAMPLES, cli_output

NVIM = shutil.which("nvim")
pytestmark = pytest.mark.skipif(
    NVIM is None and not os.environ.get("CI"),
    reason="Neovim is not installed (tools/test.sh installs Debian's neovim)",
)


@pytest.mark.parametrize("approach", ["pruning+qat"])
def test_neovim_applies_an_action_and_writes_the_cli_output(tmp_path: Path, approach: str):
    script = tmp_path / "train.py"
    shutil.copy(SAMPLES / "step_budget_loop.py", script)
    expected = cli_output("optimize", script, tmp_path / "expected.py", "-a", approach)
    env = {
        **os.environ,
        "NC_SERVER": str(Path(sys.executable).with_name("neural-coder")),
        "NC_FILE": str(script),
        "NC_APPROACH": approach,
        "XDG_STATE_HOME": str(tmp_path / "state"),  # nvim's lsp.log goes there, not to $HOME
    }
    done = subprocess.run(
        [NVIM or "nvim", "--headless", "--clean", "-c", f"luafile {Path(__file__).with_name('neovim_apply.lua')}"],
        env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert expected != (SAMPLES / "step_budget_loop.py").read_text()
    assert script.read_text() == expected
