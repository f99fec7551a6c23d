"""Notebook files: read and validate with nbformat, rewrite the code cells with the
engine, write atomically with a `.bak`, and a per-cell diff."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neural_coder.api import Output
from neural_coder.errors import NeuralCoderError, ParseError
from neural_coder.files import read_text, write_atomic
from neural_coder.notebooks.engine import (
    CellsResult,
    inspect_cells,
    migrate_cells,
    optimize_cells,
    revert_cells,
)
from neural_coder.options import OptimizeOptions
from neural_coder.report import FileReport, Status


def read_notebook(path: Path) -> Any:
    import nbformat

    text = read_text(path)
    try:
        notebook = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
    except (json.JSONDecodeError, nbformat.ValidationError, KeyError, TypeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ParseError(
            f"not a valid Jupyter notebook ({first})",
            path=path,
            hint="open and save it in Jupyter to repair it",
        ) from None
    if notebook.nbformat < 4:
        raise ParseError(
            f"nbformat {notebook.nbformat} notebooks are not supported",
            path=path,
            hint="open and save it in Jupyter 4 or later, which upgrades it",
        )
    return notebook


def code_cells(notebook: Any) -> list[tuple[int, str]]:
    """(number, source) of the Python code cells; `number` counts every cell from 1."""
    language = notebook.metadata.get("kernelspec", {}).get("language", "python")
    if language.lower() != "python":
        raise NeuralCoderError(
            f"not a Python notebook (its kernel's language is {language})",
            hint="neural-coder rewrites Python code cells only",
        )
    return [
        (number, cell.source)
        for number, cell in enumerate(notebook.cells, 1)
        if cell.cell_type == "code"
    ]


def apply_cells(notebook: Any, result: CellsResult) -> None:
    """Give changed cells their new source; their outputs are stale, so they go.
    Unchanged cells keep outputs, ids and metadata."""
    for number, old, new in zip(result.numbers, result.before, result.sources):
        if old != new:
            cell = notebook.cells[number - 1]
            cell.source = new
            cell.outputs = []
            cell.execution_count = None


def notebook_text(notebook: Any) -> str:
    import nbformat

    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


Rewrite = Callable[[Path, list[tuple[int, str]]], CellsResult]


def _rewrite_notebook_file(path: Path, rewrite: Rewrite, output: Output) -> FileReport:
    try:
        notebook = read_notebook(path)
        result = rewrite(path, code_cells_of(path, notebook))
    except NeuralCoderError as error:
        return FileReport(
            path=path, status=Status.FAILED, message=error.render(), exit_code=error.exit_code
        )
    report = result.report
    if not result.changed:
        return report
    report.diff = result.cell_diffs(path)
    if output.dry_run:
        return report
    apply_cells(notebook, result)
    target = output.path or path
    report.output = target
    report.backup = write_atomic(
        target, notebook_text(notebook), backup=output.backup and target == path
    )
    return report


def optimize_notebook_file(
    path: Path, options: OptimizeOptions, output: Output | None = None
) -> FileReport:
    rewrite: Rewrite = lambda p, c: optimize_cells(p, c, options)  # noqa: E731
    return _rewrite_notebook_file(path, rewrite, output or Output())


def migrate_notebook_file(
    path: Path, target: str = "inc", output: Output | None = None
) -> FileReport:
    rewrite: Rewrite = lambda p, c: migrate_cells(p, c, target)  # noqa: E731
    return _rewrite_notebook_file(path, rewrite, output or Output())


def revert_notebook_file(path: Path, output: Output | None = None) -> FileReport:
    """The notebook's code cells as they were before `optimize`. Cells it gives back lose
    their outputs (they came from the compressed code); the notebook's other bytes are
    kept, so a notebook optimized and reverted without being run is the original again."""
    return _rewrite_notebook_file(path, revert_cells, output or Output())


def code_cells_of(path: Path, notebook: Any) -> list[tuple[int, str]]:
    try:
        return code_cells(notebook)
    except NeuralCoderError as error:
        error.path = path
        raise


def inspect_notebook(path: Path) -> list[str]:
    return inspect_cells(path, code_cells_of(path, read_notebook(path)))
