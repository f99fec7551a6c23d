"""The magic's choice of notebook, its messages, and `neural_coder.enable`."""

from __future__ import annotations

from pathlib import Path

import pytest

import neural_coder
from neural_coder.errors import NeuralCoderError
from neural_coder.notebooks.magic import find_notebook, run_magic
from tests.notebooks.conftest import code_sources


def test_the_notebook_comes_from_the_flag_then_the_server_then_vs_code(tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    vsc = {"__vsc_ipynb_file__": "/work/vsc.ipynb"}
    assert find_notebook(vsc) == (Path("/work/vsc.ipynb"), "__vsc_ipynb_file__")
    assert find_notebook({"__session__": "/a/s.ipynb", **vsc})[1] == "__session__"
    monkeypatch.setenv("JPY_SESSION_NAME", "/a/server.ipynb")
    assert find_notebook(vsc)[1] == "JPY_SESSION_NAME"
    assert find_notebook(vsc, "mine.ipynb")[1] == "--notebook"


def test_without_a_notebook_the_magic_says_how_to_name_one(monkeypatch, capsys):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    with pytest.raises(NeuralCoderError, match="--notebook train.ipynb"):
        find_notebook({})
    assert run_magic("optimize --approach qat", {}) == 2
    assert "cannot tell which notebook" in capsys.readouterr().out


def test_magic_with_notebook_flag_rewrites_and_says_how_to_see_it(sample_notebook, capsys):
    code = run_magic(f"optimize --approach qat --notebook {sample_notebook}", {})
    said = capsys.readouterr().out
    assert code == 0, said
    assert f"notebook {sample_notebook} (from --notebook)" in said
    assert "Transformed" in said and "Reload Notebook from Disk" in said
    assert "prepare_compression(" in code_sources(sample_notebook)[3]


def test_magic_usage_errors_are_shown_not_raised(sample_notebook, capsys):
    assert run_magic(f"optimize --approach nope --notebook {sample_notebook}", {}) == 2
    said = capsys.readouterr()
    assert "unknown approach 'nope'" in said.out + said.err  # a kernel shows both
    assert run_magic("frobnicate", {}) == 2
    assert "usage: %neural_coder" in capsys.readouterr().out


def test_enable_returns_the_report(sample_notebook):
    report = neural_coder.enable(
        sample_notebook, approach="pruning", pruning={"target_sparsity": 0.8}
    )
    assert report.status.value == "Transformed"
    assert any("cell 6" in line for line in report.placed)
    assert "target_sparsity=0.8" in code_sources(sample_notebook)[3]
    again = neural_coder.enable(sample_notebook, approach="pruning")
    assert again.status.value == "Unchanged"


def test_enable_raises_on_a_refusal(tmp_path):
    script = tmp_path / "nothing.py"
    script.write_text("import torch\nprint(torch.ones(1))\n")
    with pytest.raises(NeuralCoderError, match="nothing.py"):
        neural_coder.enable(script, approach="qat")
    assert script.read_text() == "import torch\nprint(torch.ones(1))\n"
