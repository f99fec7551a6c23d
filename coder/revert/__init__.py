"""`neural-coder revert`: give back the script as it was before `optimize`, byte for byte.

Two steps, so that nothing is ever half-reverted:

1. **strip** what the tool inserts: every statement whose line ends with the
   `# neural-coder` marker, the `compression_manager` parameters and keyword
   arguments it threads through helper functions, the `CompressionCallback` it
   adds to a Trainer's `callbacks=`, a model call it hoisted into a marked
   statement, and the imports that nothing uses any more;
2. **prove** it: `optimize` is run again on that candidate with the approach,
   target and settings read back from the inserted code, and must reproduce the
   current file exactly. When it does not (a person edited an inserted line, or
   wrote code the strip step cannot tell from ours), the file is refused and the
   lines that differ are listed.

Works on text (`revert_source`), so the notebook front end can reuse it per cell.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import libcst as cst

from neural_coder.already_compressed import compression_in
from neural_coder.api import (
    Output,
    held_for_writing,
    is_notebook,
    python_files,
    rewrite_source,
)
from neural_coder.errors import NeuralCoderError
from neural_coder.files import read_text, unified_diff, write_atomic
from neural_coder.options import build_options
from neural_coder.report import FileReport, Status, failed
from neural_coder.transforms.snippets import MARKER

from .settings import approaches, option_sets, recipe_in
from .strip import strip_inserted

__all__ = ["RevertRefused", "revert", "revert_file", "revert_source", "strip_inserted"]

MAX_TRIES = 12


class RevertRefused(NeuralCoderError):
    """The inserted code cannot be removed exactly; the file is left as it is."""


def revert_source(
    path: Path, text: str, as_written: Callable[[str], str] | None = None
) -> tuple[str, FileReport]:
    """The original text and the report; raises `RevertRefused` when it cannot be proven.

    `as_written` gives optimize's output as the caller would have written it (the
    notebook layer writes a program into cells, which drops a cell's trailing blank line);
    the proof compares that with `text`."""
    written = as_written or (lambda new: new)
    report = FileReport(path=path, status=Status.UNCHANGED)
    if not compression_in(text) and MARKER not in text:
        report.message = "no code inserted by neural-coder was found; nothing to revert"
        return text, report
    try:
        stripped = strip_inserted(text)
    except cst.ParserSyntaxError as error:
        raise NeuralCoderError(
            f"does not parse: {error.message}", path=path, line=error.raw_line
        ) from None
    tried: list[tuple[str, str]] = []
    recipe = recipe_in(text)
    targets = [stripped.target] + [t for t in ("runtime", "inc") if t != stripped.target]
    if recipe is not None:
        targets = ["runtime"]  # recipes exist only in the runtime
    for approach, options_set, target in itertools.product(
        approaches(text), option_sets(text), targets
    ):
        if len(tried) >= MAX_TRIES:
            break
        try:
            options = build_options(approach, target, dict(options_set), {})
            if recipe is not None:  # the recipe file itself is not needed to strip its hooks
                options = replace(options, recipe=recipe)
            again, _ = rewrite_source(path, stripped.text, options)
            again = written(again)
        except NeuralCoderError:
            continue
        if again == text:
            report.status = Status.TRANSFORMED
            asked = f"--recipe {recipe}" if recipe is not None else f"--approach {approach}"
            report.message = f"reverted: removed what `optimize {asked}` inserted"
            if target != "runtime":
                report.message += f" (target: {target})"
            return stripped.text, report
        tried.append((approach, again))
    raise RevertRefused(
        _edited_message(text, tried),
        path=path,
        line=_edited_lines(text, tried)[0][0] if _edited_lines(text, tried) else None,
        hint=f"undo those edits, or restore {path.name}.bak; nothing was reverted",
    )


def _edited_lines(text: str, tried: list[tuple[str, str]]) -> list[tuple[int, str]]:
    """Lines of `text` that the closest reproduction of the tool's output does not have."""
    if not tried:
        return [
            (n, line)
            for n, line in enumerate(text.splitlines(), 1)
            if line.rstrip().endswith(MARKER)
        ]
    current = text.splitlines()
    best = max(
        tried,
        key=lambda t: difflib.SequenceMatcher(
            a=current, b=t[1].splitlines(), autojunk=False
        ).ratio(),
    )
    lines: list[tuple[int, str]] = []
    matcher = difflib.SequenceMatcher(a=current, b=best[1].splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            lines += [(n + 1, current[n]) for n in range(i1, i2)]
        elif tag == "insert" and i1 < len(current):
            lines.append((i1 + 1, current[i1]))
    return lines


def _edited_message(text: str, tried: list[tuple[str, str]]) -> str:
    lines = _edited_lines(text, tried)
    shown = "\n".join(f"  line {n}: {line.strip()}" for n, line in lines[:20])
    more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
    why = (
        "the code neural-coder inserted was edited since (or is not what this version inserts): "
        if tried
        else "the code carrying the neural-coder marker cannot be matched to any approach: "
    )
    return f"{why}these lines differ from what optimize writes\n{shown}{more}"


def revert_file(path: Path, output: Output | None = None) -> FileReport:
    output = output or Output()
    try:
        with held_for_writing(path, output):
            if is_notebook(path):
                # imported here: the notebook layer is built on this package's revert_source
                from neural_coder.notebooks import revert_notebook_file

                return revert_notebook_file(path, output)
            return _revert_written(path, output)
    except Exception as error:  # every failure is a report, never a traceback
        return failed(path, error)


def _revert_written(path: Path, output: Output) -> FileReport:
    text = read_text(path)
    original, report = revert_source(path, text)
    if original == text:
        return report
    report.diff = unified_diff(path, text, original)
    if output.dry_run:
        return report
    report.output = output.path or path
    report.backup = write_atomic(
        report.output, original, backup=output.backup and report.output == path
    )
    return report


def revert(paths: Iterable[Path | str], output: Output | None = None) -> list[FileReport]:
    """Files as given and the scripts below folders; any failure is that file's report."""
    return [revert_file(path, output) for path in python_files(paths)]
