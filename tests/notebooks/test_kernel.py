"""The `%neural_coder` magic in a real kernel (nbclient + ipykernel), then the rewritten
notebook run end to end on a tiny model, checked through the runtime's summary."""

from __future__ import annotations

import json

import pytest

from tests.notebooks.conftest import nbformat

nbclient = pytest.importorskip("nbclient", reason="the jupyter extra is not installed")
pytestmark = pytest.mark.e2e

MAGIC = (
    "%load_ext neural_coder\n"
    "%neural_coder optimize --approach distillation+pruning+qat --target-sparsity 0.5 --teacher copy"
)


def execute(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return notebook


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_magic_rewrites_the_running_notebook_which_then_compresses(
    sample_notebook, tmp_path, monkeypatch
):
    notebook = nbformat.read(sample_notebook, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(MAGIC))
    nbformat.write(notebook, sample_notebook)
    summary = tmp_path / "summary.json"
    # as jupyter-server starts a notebook's kernel
    monkeypatch.setenv("JPY_SESSION_NAME", str(sample_notebook))
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary))

    ran = execute(sample_notebook, tmp_path)
    said = stdout(ran.cells[0])
    assert f"neural-coder: notebook {sample_notebook} (from JPY_SESSION_NAME)" in said
    assert "Transformed" in said and "Reload the notebook" in said.replace("reload", "Reload")
    assert not summary.exists()  # the run that rewrote it trained the old cells, uncompressed

    rewritten = nbformat.read(sample_notebook, as_version=4)
    # the imports go to the top of the first code cell; the magic lines are kept as written
    assert rewritten.cells[0].source.endswith("\n\n" + MAGIC)
    assert (
        "from neural_coder.runtime.training import prepare_compression" in rewritten.cells[0].source
    )
    assert "compression_manager = prepare_compression(" in rewritten.cells[6].source

    ran = execute(sample_notebook, tmp_path)
    assert "Unchanged" in stdout(ran.cells[0])  # the magic again: a no-op
    assert "accuracy" in stdout(ran.cells[-1])
    result = json.loads(summary.read_text())
    assert result["sparsity"] == pytest.approx(0.5, abs=0.02), result
    assert result["quantized_modules"] > 0
    assert result["distillation_steps"] > 0
