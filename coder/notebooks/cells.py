"""A notebook's code cells as one Python program, and the program's edits back as cells.

IPython syntax (`%magic`, `%%cell` magics, `!shell`, `obj?`) is masked with black's
Jupyter support before the engine parses the program, and restored byte for byte
afterwards: a masked line is given back exactly as the user wrote it, so `model?`
stays `model?` (black's own unmasking would write `?model`).

Cells are joined with one marker statement between them. A statement, not a comment:
libcst gives a comment to the statement below it (or to the footer of an indented block
above it), so code inserted before a cell's first statement would slip into the cell
above; a marker statement keeps every insertion on its own side of the boundary.
"""

from __future__ import annotations

import ast
import re
import secrets
from dataclasses import dataclass, field

from neural_coder.errors import NeuralCoderError, ParseError


@dataclass
class Cell:
    """One code cell: its position in the notebook (1-based, every cell counted) and text."""

    number: int
    source: str
    masked: str = ""
    restore: dict[str, str] = field(default_factory=dict)  # masked line -> original line
    opaque: str = ""  # why the cell is kept out of the program ("" when it is in)


def _lines(text: str) -> list[str]:
    return text.split("\n")


def mask(cell: Cell) -> Cell:
    """Fill `masked` / `restore`, or mark the cell opaque (a %%bash cell, say)."""
    from black.handle_ipynb_magics import mask_cell, validate_cell
    from black.mode import Mode
    from black.report import NothingChanged

    source = cell.source
    try:
        ast.parse(source)
    except SyntaxError:
        pass
    else:
        cell.masked = source
        return cell
    try:
        validate_cell(source, Mode())
    except NothingChanged:
        cell.opaque = "a cell magic that does not run Python"
        return cell
    # IPython drops a cell's leading blank lines; keep them ourselves so lines line up
    head = re.match(r"(?:[ \t]*\n)*", source).group(0)  # type: ignore[union-attr]
    body = source[len(head) :]
    try:
        masked_body, replacements = mask_cell(body)
    except NothingChanged:
        cell.opaque = "IPython syntax spanning several lines, which cannot be masked"
        return cell
    except SyntaxError as error:
        raise ParseError(
            f"does not parse: {error.msg}",
            line=(error.lineno or 1) + head.count("\n"),
            hint="fix the cell so that it runs, then try again",
        ) from None
    for replacement in replacements:
        if replacement.mask.startswith('b"'):
            # a name, not black's bytes literal: a string first in a cell would read as a
            # docstring, and the imports the engine adds would go below it
            name = f"_{replacement.mask[2:-1]}_"
            masked_body = masked_body.replace(replacement.mask, name, 1)
    original, masked = _lines(body), _lines(masked_body)
    if masked and masked[-1] == "" and (not original or original[-1] != ""):
        masked.pop()  # IPython appends a newline the cell did not have
    if len(masked) != len(original):
        cell.opaque = "IPython syntax that changes the cell's line count when masked"
        return cell
    for before, after in zip(original, masked):
        if before != after:
            if after in cell.restore:
                cell.opaque = "IPython syntax that cannot be restored exactly"
                return cell
            cell.restore[after] = before
    cell.masked = head + "\n".join(masked)
    return cell


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"  # an empty cell is one line


@dataclass
class CellProgram:
    """The code cells joined into one program; `split` maps a rewritten program back."""

    cells: list[Cell]
    marker: str = field(default_factory=lambda: f"__neural_coder_cell_{secrets.token_hex(6)}__")

    @classmethod
    def from_sources(cls, sources: list[tuple[int, str]]) -> CellProgram:
        program = cls([Cell(number, source) for number, source in sources])
        for cell in program.cells:
            try:
                mask(cell)
            except NeuralCoderError as error:
                error.cell = cell.number
                raise
        return program

    def _segment(self, cell: Cell) -> str:
        return _with_newline("" if cell.opaque else cell.masked)

    @property
    def text(self) -> str:
        return f"{self.marker}\n".join(self._segment(cell) for cell in self.cells)

    def locate(self, line: int) -> tuple[int, int]:
        """(cell number, line in the cell) of a line of the program."""
        start = 1
        for cell in self.cells:
            length = self._segment(cell).count("\n")
            if line < start + length or cell is self.cells[-1]:
                return cell.number, max(1, line - start + 1)
            start += length + 1
        raise ValueError(line)

    def relabel(self, text: str, path: object = None) -> str:
        """`line 42` in a report line -> `cell 3 line 5`; `path:42:` -> `path:cell 3:line 5:`."""

        def where(match: re.Match[str]) -> str:
            cell, line = self.locate(int(match.group(2)))
            return f"cell {cell} {match.group(1)}{line}"

        def at(match: re.Match[str]) -> str:
            cell, line = self.locate(int(match.group(1)))
            return f"{path}:cell {cell}:line {line}"

        if path is not None:
            text = re.sub(re.escape(str(path)) + r":(\d+)(?::\d+)?", at, text)
        return re.sub(r"(?<!cell \d)\b(line\s+)(\d+)", where, text)

    def located(self, error: NeuralCoderError) -> NeuralCoderError:
        """The same error, pointing at the cell and the line in it."""
        if error.line is not None and error.cell is None:
            error.cell, error.line = self.locate(error.line)
            error.column = None
        error.message = self.relabel(error.message, error.path)
        if error.hint:
            error.hint = self.relabel(error.hint, error.path)
        return error

    def _parts(self, rewritten: str) -> list[str | None]:
        """The masked text of each cell in a rewritten program (None: as it was); a cell
        keeps its own convention for a final newline, as a person's cells do."""
        parts = [""]
        for line in rewritten.splitlines(keepends=True):
            if line.rstrip("\r\n") == self.marker:
                parts.append("")
            else:
                parts[-1] += line
        if len(parts) != len(self.cells):
            raise NeuralCoderError(
                "internal error: the rewrite moved a cell boundary; nothing was written"
            )
        found: list[str | None] = []
        for cell, part in zip(self.cells, parts):
            if part == self._segment(cell):
                found.append(None)
                continue
            if cell.opaque:
                raise NeuralCoderError(
                    f"internal error: code was inserted into cell {cell.number}, which is "
                    f"not analysed ({cell.opaque}); nothing was written"
                )
            if not cell.masked.endswith("\n"):
                # all of them: a blank line the rewrite leaves at the end of such a cell
                # would be a stray newline there, and revert could not tell it was added
                part = part.rstrip("\n")
            found.append(part)
        return found

    def split(self, rewritten: str) -> list[str]:
        """The new source of each cell (opaque cells as they were)."""
        return [
            cell.source if part is None else self._unmask(cell, part)
            for cell, part in zip(self.cells, self._parts(rewritten))
        ]

    def as_cells(self, rewritten: str) -> str:
        """A rewritten program as it reads once written into cells and joined again
        (a blank line the rewrite left at the end of a cell is not kept there)."""
        segments = [
            self._segment(cell) if part is None else _with_newline(part)
            for cell, part in zip(self.cells, self._parts(rewritten))
        ]
        return f"{self.marker}\n".join(segments)

    def _unmask(self, cell: Cell, text: str) -> str:
        lines = _lines(text)
        for masked, original in cell.restore.items():
            hits = [i for i, line in enumerate(lines) if line == masked]
            if len(hits) != 1:
                raise NeuralCoderError(
                    f"the rewrite would change the line {original!r}, which holds IPython "
                    "syntax; nothing was written",
                    cell=cell.number,
                    hint="put the magic (or shell command) on a line of its own",
                )
            lines[hits[0]] = original
        return "\n".join(lines)
