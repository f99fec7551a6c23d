"""The engine for notebooks: code cells in, new cell sources and a report out.

Built on the text API (`rewrite_source`, `migrate_text`): the cells are joined into
one program, the engine rewrites it, and the result is split back into cells. The
file layer, the IPython magic and the JupyterLab server extension all call this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from neural_coder.api import migrate_text, rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.files import unified_diff
from neural_coder.notebooks.cells import CellProgram
from neural_coder.options import OptimizeOptions
from neural_coder.report import FileReport, Status


@dataclass
class CellsResult:
    """Per input cell: its number, old and new source; the cells that changed; the report."""

    numbers: list[int]
    before: list[str]
    sources: list[str]
    report: FileReport

    @property
    def changed(self) -> list[int]:
        return [n for n, old, new in zip(self.numbers, self.before, self.sources) if old != new]

    def cell_diffs(self, path: Path) -> str:
        """A unified diff per changed cell, each headed `path (cell N)`."""
        return "".join(
            unified_diff(Path(f"{path} (cell {number})"), _nl(old), _nl(new))
            for number, old, new in zip(self.numbers, self.before, self.sources)
            if old != new
        )


def _nl(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


#: (path, program text, the program) -> the rewritten text and the report
Rewrite = Callable[[Path, str, CellProgram], tuple[str, FileReport]]


def _rewrite_cells(path: Path, cells: list[tuple[int, str]], rewrite: Rewrite) -> CellsResult:
    """`cells`: (number, source) of each code cell, in notebook order (number is 1-based,
    every cell counted, so `cell 5` is the fifth cell a person sees)."""
    try:
        program = CellProgram.from_sources(cells)
    except NeuralCoderError as error:  # a cell that does not parse: it names the cell already
        error.path = error.path or path
        raise
    text = program.text
    try:
        new_text, report = rewrite(path, text, program)
        sources = program.split(new_text) if new_text != text else [s for _, s in cells]
    except NeuralCoderError as error:
        error.path = error.path or path
        raise program.located(error) from None
    report.found = [program.relabel(line) for line in report.found]
    report.placed = [program.relabel(line, path) for line in report.placed]
    report.warnings = [program.relabel(line, path) for line in report.warnings]
    report.warnings += [
        f"cell {cell.number} is not analysed: {cell.opaque}"
        for cell in program.cells
        if cell.opaque
    ]
    report.message = program.relabel(report.message)
    result = CellsResult([n for n, _ in cells], [s for _, s in cells], sources, report)
    if result.changed:
        report.message += f" (cells changed: {', '.join(map(str, result.changed))})"
    return result


def optimize_cells(
    path: Path, cells: list[tuple[int, str]], options: OptimizeOptions
) -> CellsResult:
    return _rewrite_cells(path, cells, lambda p, t, _: rewrite_source(p, t, options))


def migrate_cells(path: Path, cells: list[tuple[int, str]], target: str = "inc") -> CellsResult:
    return _rewrite_cells(path, cells, lambda p, t, _: migrate_text(p, t, target))


def revert_cells(path: Path, cells: list[tuple[int, str]]) -> CellsResult:
    """The cells as they were before `optimize`; raises `RevertRefused` (naming the cells
    and lines that were edited) when that cannot be proven."""
    from neural_coder.revert import revert_source  # revert is built on the api, like us

    return _rewrite_cells(path, cells, lambda p, t, program: revert_source(p, t, program.as_cells))


def inspect_cells(path: Path, cells: list[tuple[int, str]]) -> list[str]:
    from neural_coder.analysis import analyze, parse_source

    program = CellProgram.from_sources(cells)
    try:
        facts = analyze(parse_source(path, program.text))
    except NeuralCoderError as error:
        raise program.located(error) from None
    return [program.relabel(line) for line in facts.lines()]


def failed(path: Path, error: NeuralCoderError) -> FileReport:
    return FileReport(
        path=path, status=Status.FAILED, message=error.render(), exit_code=error.exit_code
    )
