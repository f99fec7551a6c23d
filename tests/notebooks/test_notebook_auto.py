"""`neural-coder auto` on a notebook: its code cells (IPython lines included) run in a
fresh IPython process per candidate, and the winner's cells are written back exactly as
`optimize --approach <winner>` writes them. No timing is asserted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.notebooks.conftest import nbformat, write_notebook

pytestmark = pytest.mark.e2e
TINY_EVAL = Path(__file__).parents[1] / "lsp" / "tiny_eval.py"


def tiny_notebook(path: Path) -> Path:
    head, tail = TINY_EVAL.read_text().split("\n\n\ndef evaluate", 1)
    return write_notebook(
        path,
        ("markdown", "# A tiny evaluation"),
        ("code", "%env TINY=1\n!echo reading data\n" + head.strip()),
        ("code", "def evaluate" + tail.strip()),
    )


def test_auto_on_a_notebook_runs_its_cells_and_writes_the_winners_cells(tmp_path):
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    original = notebook.read_bytes()
    report = tmp_path / "auto.json"
    result = run_cli("auto", notebook, "--approaches", "ptq-dynamic", "--report", report)
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    assert [c["name"] for c in figures["candidates"]] == ["fp32", "ptq-dynamic"]
    assert all(c["status"] == "measured" for c in figures["candidates"]), result.output
    assert figures["fp32_accuracy"] == 1.0  # every cell ran, the %env and ! lines included
    assert not list(tmp_path.glob(".*neural-coder-auto*"))
    if figures["winner"] is None:
        assert "nothing beats fp32" in result.output and notebook.read_bytes() == original
        return
    assert "(cells changed: " in figures["message"]
    expected = tmp_path / "expected.ipynb"
    expected.write_bytes(original)
    assert run_cli("optimize", expected, "-a", figures["winner"]).exit_code == 0
    assert notebook.read_bytes() == expected.read_bytes()
    assert (tmp_path / "tiny.ipynb.bak").read_bytes() == original


def test_a_failing_cell_fails_that_candidate_with_the_cell_named(tmp_path):
    notebook = tiny_notebook(tmp_path / "broken.ipynb")
    cells = nbformat.read(notebook, as_version=4)
    cells.cells[2].source += "\nraise RuntimeError('the data is gone')"
    nbformat.write(cells, notebook)
    shutil.copy(notebook, tmp_path / "before.ipynb")
    report = tmp_path / "auto.json"
    result = run_cli(
        "auto", notebook, "--approaches", "ptq-dynamic", "--report", report, "--timeout", "120"
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    fp32 = figures["candidates"][0]
    assert fp32["status"] == "failed" and "the data is gone" in fp32["reason"], fp32
    assert figures["winner"] is None
    assert notebook.read_bytes() == (tmp_path / "before.ipynb").read_bytes()
