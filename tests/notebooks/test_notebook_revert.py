"""`revert` on notebooks: revert(optimize(nb)) == nb byte for byte, and an edited
inserted line refuses the whole notebook, naming its cell and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, run_cli
from tests.notebooks.conftest import code_sources, nbformat, write_notebook

SAMPLE_APPROACHES = [
    "qat",
    "pruning",
    "distillation+pruning+qat",
    "ptq-static",
    "ptq-dynamic",
    "bf16",
    "benchmark",
]
# scripts of the sample set cut into cells at their top-level statements
SCRIPT_NOTEBOOKS = [
    ("ptq_cnn_eval.py", ["ptq-static"]),
    ("hf_inference.py", ["bf16"]),
    ("one_epoch_helper.py", ["pruning+qat", "--target-sparsity", "0.7"]),
    ("step_budget_loop.py", ["distillation", "--teacher", "teacher.pt"]),
]


def notebook_from_script(script: Path, path: Path) -> Path:
    """One code cell per run of top-level statements between blank lines."""
    text = script.read_text()
    lines = text.splitlines()
    starts = [
        node.lineno - len(getattr(node, "decorator_list", [])) for node in ast.parse(text).body
    ]
    cuts = [s for s in starts if s > 1 and not lines[s - 2].strip()]
    bounds = [1, *cuts, len(lines) + 1]
    cells = ["\n".join(lines[a - 1 : b - 1]).strip("\n") for a, b in zip(bounds, bounds[1:])]
    return write_notebook(path, ("markdown", f"# {script.name}"), *(("code", c) for c in cells))


def keep_outputs_on(path: Path, numbers: list[int]) -> None:
    """Outputs on cells optimize leaves alone: they must survive both ways."""
    notebook = nbformat.read(path, as_version=4)
    for number in numbers:
        cell = notebook.cells[number - 1]
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {number}\n")]
        cell.execution_count = number
    nbformat.write(notebook, path)


@pytest.mark.parametrize("approach", SAMPLE_APPROACHES)
def test_revert_gives_the_sample_notebook_back_byte_for_byte(sample_notebook, approach):
    keep_outputs_on(sample_notebook, [3, 4, 7])  # optimize changes cells 2 and 6
    original = sample_notebook.read_bytes()
    optimized = run_cli("optimize", sample_notebook, "-a", approach, "--teacher", "copy")
    assert optimized.exit_code == 0 and "cells changed: 2, 6" in optimized.output
    assert sample_notebook.read_bytes() != original
    reverted = run_cli("revert", sample_notebook, "--no-backup")
    assert reverted.exit_code == 0, reverted.output
    assert f"removed what `optimize --approach {approach}` inserted" in reverted.output
    assert sample_notebook.read_bytes() == original
    again = run_cli("revert", sample_notebook)
    assert again.exit_code == 0 and "nothing to revert" in again.output


@pytest.mark.parametrize(("script", "approach"), SCRIPT_NOTEBOOKS)
def test_revert_of_sample_scripts_as_notebooks(tmp_path, script, approach):
    path = notebook_from_script(SAMPLES / script, tmp_path / "nb.ipynb")
    original = path.read_bytes()
    optimized = run_cli("optimize", path, "-a", *approach)
    assert optimized.exit_code == 0 and "Transformed" in optimized.output, optimized.output
    reverted = run_cli("revert", path)
    assert reverted.exit_code == 0, reverted.output
    assert path.read_bytes() == original


def test_an_edited_inserted_line_refuses_the_notebook_naming_cell_and_line(sample_notebook):
    assert run_cli("optimize", sample_notebook, "-a", "pruning").exit_code == 0
    notebook = nbformat.read(sample_notebook, as_version=4)
    training = notebook.cells[5].source.splitlines()
    at = next(i for i, line in enumerate(training) if ".on_train_begin()" in line)
    edited_line = "compression_manager.callbacks.on_train_begin(); print('go')  # neural-coder"
    assert training[at].endswith("# neural-coder") and training[at] != edited_line
    training[at] = edited_line
    notebook.cells[5].source = "\n".join(training)
    nbformat.write(notebook, sample_notebook)
    edited = sample_notebook.read_bytes()
    result = run_cli("revert", sample_notebook)
    assert result.exit_code == 1, result.output
    assert f"cell 6 line {at + 1}: {edited_line}" in result.output
    assert "nothing was reverted" in result.output
    assert sample_notebook.read_bytes() == edited


def test_revert_on_a_folder_takes_notebooks_and_scripts(tmp_path, sample_notebook):
    original = code_sources(sample_notebook)
    script = tmp_path / "ptq_cnn_eval.py"
    script.write_text((SAMPLES / "ptq_cnn_eval.py").read_text())
    assert run_cli("optimize", tmp_path, "-a", "ptq-dynamic").exit_code == 0
    result = run_cli("revert", tmp_path)
    assert result.exit_code == 0, result.output
    assert code_sources(sample_notebook) == original
    assert script.read_text() == (SAMPLES / "ptq_cnn_eval.py").read_text()
