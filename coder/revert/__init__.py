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

import contextlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import libcst as cst

from neural_coder.already_compressed import compression_in
from neural_coder.analysis.project import discover_project
from neural_coder.api import (
    Output,
    Project,
    held_for_writing,
    is_notebook,
    python_files,
    rewrite_source,
    to_output_file,
)
from neural_coder.errors import NeuralCoderError
from neural_coder.files import check_writable, read_text, unified_diff, write_atomic
from neural_coder.projects import write_all
from neural_coder.report import FileReport, Status, failed
from neural_coder.transforms.snippets import MARKER

from .differences import (
    RevertRefused,
    differences_message,
    edited_lines,
    marked_lines,
    similarity,
)
from .project import (
    ProjectRevert,
    RewrittenWithEntry,
    carries_inserted_code,
    entry_reverting,
    has_inline_edits,
    module_refusal,
    revert_project,
    shown,
)
from .settings import MAX_TRIES, asked_for, candidate_options
from .strip import strip_inserted

__all__ = ["RevertRefused", "revert", "revert_file", "revert_source", "strip_inserted"]


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
    for approach, target, options in candidate_options(text, stripped.target):
        if len(tried) >= MAX_TRIES:
            break
        try:
            again, _ = rewrite_source(path, stripped.text, options)
            again = written(again)
        except NeuralCoderError:
            continue
        if again == text:
            report.status = Status.TRANSFORMED
            report.message = (
                f"reverted: removed what `optimize {asked_for(approach, options)}` inserted"
            )
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
        return marked_lines(text)
    best = max(tried, key=lambda t: similarity(text, t[1]))
    return edited_lines(text, best[1])


def _edited_message(text: str, tried: list[tuple[str, str]]) -> str:
    listed = [f"  line {n}: {line.strip()}" for n, line in _edited_lines(text, tried)]
    return differences_message(listed, reproduced=bool(tried))


def revert_file(
    path: Path,
    output: Output | None = None,
    project: Project | None = None,
    batch: frozenset[Path] = frozenset(),
) -> FileReport:
    """One script, with the modules of its project that optimize rewrote with it; a module
    whose entry script is in `batch` (the files of this run, resolved) is left to it."""
    output = output or Output()
    try:
        with held_for_writing(path, output):
            if is_notebook(path):
                # imported here: the notebook layer is built on this package's revert_source
                from neural_coder.notebooks import revert_notebook_file

                return revert_notebook_file(path, output)
            return _revert_written(path, output, project or Project())
    except RewrittenWithEntry as error:
        if error.entry.resolve() in batch:
            return FileReport(
                path=path,
                status=Status.SKIPPED,
                message=f"a module of the project of {error.entry}: reverted with that script",
            )
        return failed(path, error)
    except Exception as error:  # every failure is a report, never a traceback
        return failed(path, error)


def _revert_written(path: Path, output: Output, project: Project) -> FileReport:
    text = read_text(path)
    sources = discover_project(path, text, project.root) if project.follow_imports else {}
    if any(carries_inserted_code(t) for p, t in sources.items() if p != path):
        try:
            reverted = revert_project(path, sources, project.root)
        except RevertRefused:
            elsewhere = None
            if not carries_inserted_code(text):
                elsewhere = _modules_of_another_script(path, sources, project)
            if elsewhere is None:
                raise
            return elsewhere
        return _write_project(path, sources, reverted, output)
    if carries_inserted_code(text) and project.follow_imports:
        # a module of another script's project, which that script's revert gives back
        entry = entry_reverting(path, project.root)
        if entry is not None:
            raise RewrittenWithEntry(path, entry)
    try:
        original, report = revert_source(path, text)
    except RevertRefused:
        if len(sources) > 1:  # optimize followed the script's imports, and edited only it
            with contextlib.suppress(NeuralCoderError):
                reverted = revert_project(path, sources, project.root)
                return _write_project(path, sources, reverted, output)
        if MARKER not in text and has_inline_edits(text):
            raise module_refusal(path, text) from None
        raise
    if original == text:
        if has_inline_edits(text):
            raise module_refusal(path, text)
        return report
    report.diff = unified_diff(path, text, original)
    if output.dry_run:
        return report
    report.output = output.path or path
    report.backup = write_atomic(
        report.output, original, backup=output.backup and report.output == path
    )
    return report


def _modules_of_another_script(
    path: Path, sources: Mapping[Path, str], project: Project
) -> FileReport | None:
    """A script without the tool's code whose modules carry it: another script's
    optimize (`tools/train.py`, not `tools/evaluate.py`) rewrote them."""
    for module, text in sources.items():
        if module == path or not carries_inserted_code(text):
            continue
        entry = entry_reverting(module, project.root)
        if entry is not None and entry.resolve() != path.resolve():
            return FileReport(
                path=path,
                status=Status.UNCHANGED,
                message="no code inserted by neural-coder in this script; its module "
                f"{shown(path, module)} was rewritten by optimize on {entry}: "
                f"`neural-coder revert {entry}` reverts them",
            )
    return None


def _write_project(
    path: Path, sources: Mapping[Path, str], reverted: ProjectRevert, output: Output
) -> FileReport:
    """Every file of the project that changes, written together once all are proven."""
    originals = reverted.originals
    names = ", ".join(shown(path, p) for p in originals)
    report = FileReport(path=path, status=Status.TRANSFORMED, files=list(sources))
    report.message = f"reverted: removed what `optimize {reverted.asked}` inserted in {names}"
    if reverted.target != "runtime":
        report.message += f" (target: {reverted.target})"
    report.diff = "".join(unified_diff(p, sources[p], t) for p, t in originals.items())
    report.files_written = list(originals)
    if output.dry_run:
        return report
    if output.path is not None:
        single = to_output_file(path, originals, output.path, "revert")
        if isinstance(single, FileReport):
            return single
        originals = single
        report.files_written = []
    for target in originals:
        check_writable(target, backup=output.backup and target in sources)
    try:
        backups = write_all(originals, backup=output.backup and output.path is None)
    except OSError as error:
        raise NeuralCoderError(
            f"cannot write the result: {error.strerror or error} ({error.filename}); "
            "no file of the project was reverted",
            path=path,
        ) from None
    report.output = output.path or path
    report.backup = backups.get(path)
    return report


def revert(
    paths: Iterable[Path | str], output: Output | None = None, project: Project | None = None
) -> list[FileReport]:
    """Files as given and the scripts below folders; any failure is that file's report.
    A module reverted with its project's entry script, given too, is reported as skipped."""
    files = python_files(paths)
    batch = frozenset(p.resolve() for p in files)
    return [revert_file(path, output, project, batch) for path in files]
