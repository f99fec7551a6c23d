"""`auto` on a notebook: the code cells, joined into one program as for `optimize`, are
the script every candidate rewrites; each candidate's cells are run, in order, by IPython
in a fresh process (`run_cells`), so magics and shell lines run as in Jupyter. The
winner's cells are written back into the notebook (other cells and bytes kept)."""

from __future__ import annotations

import sys
from pathlib import Path

from neural_coder.api import Output
from neural_coder.auto import AutoOptions, AutoResult, Progress, Runnable, auto_source, write_winner
from neural_coder.errors import NeuralCoderError
from neural_coder.files import read_text
from neural_coder.notebooks.cells import CellProgram
from neural_coder.notebooks.engine import CellsResult
from neural_coder.notebooks.files import apply_cells, code_cells_of, notebook_text, read_notebook
from neural_coder.report import FileReport, Status

RUNNER = "neural_coder.notebooks.run_cells"


def runnable_for(program: CellProgram) -> Runnable:
    """A candidate's program -> a notebook of its code cells, run by `run_cells`."""

    def render(text: str) -> str:
        import nbformat
        from nbformat.v4 import new_code_cell, new_notebook

        cells = [new_code_cell(source) for source in program.split(text)]
        return nbformat.writes(new_notebook(cells=cells))

    return Runnable(suffix=".ipynb", render=render, launcher=(sys.executable, "-m", RUNNER))


def auto_cells(
    path: Path,
    cells: list[tuple[int, str]],
    options: AutoOptions | None = None,
    progress: Progress | None = None,
) -> tuple[AutoResult, CellsResult]:
    """Measure every candidate on the cells (run from `path`'s folder); the result (its
    diff per changed cell) and the winner's cells (the cells as they are when nothing
    beats fp32)."""
    try:
        program = CellProgram.from_sources(cells)
    except NeuralCoderError as error:
        error.path = error.path or path
        raise
    try:
        result = auto_source(
            path, program.text, options or AutoOptions(), progress, runnable_for(program)
        )
        sources = program.split(result.new_text) if result.new_text else [s for _, s in cells]
    except NeuralCoderError as error:
        error.path = error.path or path
        raise program.located(error) from None
    for candidate in result.candidates:
        candidate.reason = program.relabel(candidate.reason, path)
    report = FileReport(path=path, status=Status.UNCHANGED, message=result.message)
    winner = CellsResult([n for n, _ in cells], [s for _, s in cells], sources, report)
    if winner.changed:
        report.status = Status.TRANSFORMED
        result.message += f" (cells changed: {', '.join(map(str, winner.changed))})"
    result.diff = winner.cell_diffs(path)
    return result, winner


def auto_notebook_file(
    path: Path,
    options: AutoOptions | None = None,
    output: Output | None = None,
    progress: Progress | None = None,
) -> AutoResult:
    """`auto_cells` on a notebook file; the winner's cells are written unless a dry run."""
    output = output or Output()
    text = read_text(path)
    notebook = read_notebook(path)
    result, winner = auto_cells(path, code_cells_of(path, notebook), options, progress)
    if winner.changed:
        apply_cells(notebook, winner)
        write_winner(result, text, notebook_text(notebook), output)
    return result
