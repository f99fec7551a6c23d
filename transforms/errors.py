"""The one exception family for failures a person can hit.

It lives in `transforms` (which imports nothing else of ours) so that both the
transforms and the coder can raise it; `neural_coder.errors` re-exports it.
Every message names the file (and line, where there is one) and the fix.
"""

from __future__ import annotations

from pathlib import Path


class NeuralCoderError(Exception):
    """Base of every expected failure. The CLI prints it without a traceback."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
        cell: int | None = None,
    ) -> None:
        self.message = message
        self.cell = cell  # a notebook's cell (1-based); `line` is then the line in that cell
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.render())

    def location(self) -> str:
        parts = [str(self.path)] if self.path is not None else []
        if self.cell is not None:
            parts.append(f"cell {self.cell}")
            if self.line is not None:
                parts.append(f"line {self.line}")
        elif self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def render(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ParseError(NeuralCoderError):
    """The input file is not valid Python."""

    exit_code = 2


class AnalysisError(NeuralCoderError):
    """Analysis could not find (or could not decide on) what a transform needs."""


class ConfigError(NeuralCoderError):
    """A tool option, a --config yaml or a 1.x conf.yaml is invalid. The CLI turns a bad
    option or --config into a usage error (exit 2); a file's own conf.yaml fails that file (1)."""


class MigrationError(NeuralCoderError):
    """A 1.x script or yaml cannot be migrated."""
