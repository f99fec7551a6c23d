"""Notebooks as files: optimize / migrate / inspect on .ipynb, before and after."""

from __future__ import annotations

import json

from neural_coder.files import display_path
from tests.conftest import run_cli
from tests.notebooks.conftest import code_sources, nbformat, write_notebook


def with_outputs(path):
    """Give every code cell an output, an execution count and a metadata entry."""
    notebook = nbformat.read(path, as_version=4)
    for number, cell in enumerate(notebook.cells, 1):
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {number}\n")]
            cell.execution_count = number
            cell.metadata["tags"] = [f"t{number}"]
    nbformat.write(notebook, path)
    return notebook


def test_model_and_loop_in_different_cells_are_rewritten_cell_by_cell(sample_notebook):
    before = with_outputs(sample_notebook)
    result = run_cli("optimize", sample_notebook, "--approach", "qat")
    assert result.exit_code == 0, result.output
    assert "Transformed" in result.output and "cells changed: 2, 6" in result.output
    assert "before the statement at cell 6 line 2" in result.output
    after = nbformat.read(sample_notebook, as_version=4)
    assert len(after.cells) == len(before.cells)
    for old, new in zip(before.cells, after.cells):
        assert old.cell_type == new.cell_type and old.get("id") == new.get("id")
        if old.source == new.source:  # unchanged: outputs, ids and metadata kept
            assert new == old
        else:  # changed: the outputs came from the old code
            assert new.outputs == [] and new.execution_count is None
            assert new.metadata == old.metadata
    training = after.cells[5].source
    assert training.startswith("%%time\ncompression_manager = prepare_compression(model, ")
    assert "compression_manager.callbacks.on_before_optimizer_step()" in training
    # the model cell (4) is untouched; the imports go to the top of the first code cell
    assert after.cells[3].source == before.cells[3].source
    assert after.cells[1].source.startswith("from neural_coder.runtime.config import ")
    assert after.cells[1].source.endswith("\n" + before.cells[1].source)
    assert (sample_notebook.parent / "train.ipynb.bak").read_text() != sample_notebook.read_text()
    nbformat.validate(after)


def test_ipython_syntax_is_kept_byte_for_byte(sample_notebook):
    before = code_sources(sample_notebook)
    assert run_cli("optimize", sample_notebook, "-a", "pruning").exit_code == 0
    after = code_sources(sample_notebook)
    for line in ("%env TOKENIZERS_PARALLELISM=false", "!echo preparing data", "model?", "%%time"):
        assert sum(line in cell.splitlines() for cell in before) == 1
        assert sum(line in cell.splitlines() for cell in after) == 1, line
    # every line the user wrote is still there, in order, in its cell
    for old, new in zip(before, after):
        lines = iter(new.splitlines())
        assert all(any(line == kept for kept in lines) for line in old.splitlines())


def test_second_run_is_a_no_op(sample_notebook):
    # the sample's model is built at random: the frozen-copy teacher is asked for explicitly
    approach = ["-a", "distillation+pruning+qat", "--teacher", "copy"]
    assert run_cli("optimize", sample_notebook, *approach).exit_code == 0
    once = sample_notebook.read_bytes()
    result = run_cli("optimize", sample_notebook, *approach)
    assert result.exit_code == 0 and "Unchanged" in result.output
    assert "already compressed (compression code at cell 6 line" in result.output
    assert sample_notebook.read_bytes() == once


def test_diff_names_each_cell_and_writes_nothing(sample_notebook):
    before = sample_notebook.read_bytes()
    result = run_cli("optimize", sample_notebook, "-a", "qat", "--diff")
    assert result.exit_code == 0
    shown = display_path(sample_notebook)
    assert f"--- a/{shown} (cell 2)" in result.output
    assert f"+++ b/{shown} (cell 6)" in result.output
    assert "(cell 4)" not in result.output
    assert sample_notebook.read_bytes() == before


def test_a_cell_that_does_not_parse_is_refused_with_cell_and_line(tmp_path):
    path = write_notebook(
        tmp_path / "broken.ipynb",
        ("markdown", "# notes"),
        ("code", "%matplotlib inline\nimport torch"),
        ("code", "model = torch.nn.Linear(2, 2)\n\nx = (1,\n"),
    )
    before = path.read_bytes()
    result = run_cli("optimize", path, "-a", "qat")
    assert result.exit_code == 2
    assert f"{path}:cell 3:line 3: " in result.output, result.output
    assert path.read_bytes() == before and not (tmp_path / "broken.ipynb.bak").exists()


def test_a_refusal_names_the_cell_and_line(tmp_path):
    path = write_notebook(
        tmp_path / "eval.ipynb",
        ("code", "import torch"),
        (
            "code",
            "model = torch.nn.Linear(2, 2)\nloss = model(torch.randn(1, 2)).sum()\nloss.backward()",
        ),
    )
    result = run_cli("optimize", path, "-a", "qat")
    assert result.exit_code == 1
    assert f"{path}:cell 2:line 3: " in result.output, result.output


def test_cell_magics_that_are_not_python_are_kept_out_of_the_program(tmp_path):
    bash = "%%bash\necho for epoch in range(3):\n"
    path = write_notebook(
        tmp_path / "mixed.ipynb",
        ("code", "import torch\nfrom torch import nn"),
        ("code", bash),
        ("code", "model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\nopt = torch.optim.SGD(model.parameters(), lr=0.1)"),
        (
            "code",
            "for step in range(3):\n    loss = model(torch.randn(8, 4)).pow(2).mean()\n    loss.backward()\n    opt.step()\n    opt.zero_grad()",
        ),
    )
    result = run_cli("optimize", path, "-a", "pruning")
    assert result.exit_code == 0, result.output
    assert "cell 2 is not analysed: a cell magic that does not run Python" in result.output
    sources = code_sources(path)
    assert sources[1] == bash and "compression_manager = prepare_compression(" in sources[3]


def test_invalid_notebook_json_is_refused(tmp_path):
    path = tmp_path / "bad.ipynb"
    path.write_text(
        json.dumps({"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}})
    )
    result = run_cli("optimize", path, "-a", "qat")
    assert result.exit_code == 2 and "not a valid Jupyter notebook" in result.output


def test_inspect_reports_cells_and_lines(sample_notebook):
    result = run_cli("inspect", sample_notebook)
    assert result.exit_code == 0
    assert "model       cell 4 line   1  torch.nn.Sequential  -> model" in result.output
    assert "backward    cell 6 line   7  loss.backward()" in result.output


def test_migrate_walks_folders_into_notebooks(tmp_path):
    legacy = (
        "from neural_compressor.experimental import Quantization, common\n"
        "quantizer = Quantization('conf.yaml')"
    )
    (tmp_path / "conf.yaml").write_text(
        "model:\n  name: m\n  framework: pytorch\nquantization:\n  approach: post_training_dynamic_quant\n"
    )
    path = write_notebook(
        tmp_path / "legacy.ipynb",
        ("code", "%load_ext autoreload\nimport torch\nmodel = torch.nn.Linear(2, 2)"),
        ("code", legacy + "\nquantizer.model = common.Model(model)\nq_model = quantizer.fit()"),
    )
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write_notebook(tmp_path / ".ipynb_checkpoints" / "legacy-checkpoint.ipynb", ("code", legacy))
    result = run_cli("migrate", tmp_path)
    assert "Transformed: " + str(path) in result.output, result.output
    assert "checkpoint" not in result.output
    sources = code_sources(path)
    assert "\n%load_ext autoreload\nimport torch\n" in sources[0]
    assert "neural_compressor.experimental" not in sources[1]
    assert "fit(" in sources[1]


def test_a_notebook_in_another_language_is_refused(tmp_path):
    path = write_notebook(tmp_path / "r.ipynb", ("code", "x <- 1"))
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    nbformat.write(notebook, path)
    result = run_cli("optimize", path, "-a", "qat")
    assert result.exit_code == 1
    assert f"{path}: not a Python notebook (its kernel's language is R)" in result.output
