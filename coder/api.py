"""neural-coder for Python callers and front ends: `optimize`, `migrate`, `inspect`, and the
text-in, text-out engine calls (`rewrite_source`, `migrate_text`, `survey_source`).

One pass per script: parse -> analyze -> plan -> transform -> verify -> emit.
A script that imports modules of its project (`from engine import train_one_epoch`)
is analysed with them, and edited where each part lives (`rewrite_sources` takes
the set of sources). Nothing is written unless every step succeeded, for every file.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from neural_coder.already_compressed import already_compressed, refuse_quantizing_twice
from neural_coder.analysis import (
    INSERTED_MARKER,
    Facts,
    Source,
    analyze,
    inserted_marker_line,
    parse_source,
)
from neural_coder.analysis.project import discover_project, parse_project, relocate
from neural_coder.analysis.source import parse_checked
from neural_coder.batch import run_files
from neural_coder.errors import NeuralCoderError
from neural_coder.files import (
    check_writable,
    exclusive,
    line_length_for,
    read_text,
    unified_diff,
    write_atomic,
)
from neural_coder.options import OptimizeOptions
from neural_coder.planning import make_plan
from neural_coder.projects import apply_plan, shared_signatures, write_all
from neural_coder.report import FileReport, Status, failed
from neural_coder.survey import APPROACHES, Survey, survey_source
from neural_coder.verify import verify_rewrite

__all__ = [
    "APPROACHES", "Output", "Project", "Survey", "inspect", "inspect_lines", "migrate",
    "migrate_text", "optimize", "rewrite_source", "rewrite_sources", "survey_source",
]  # fmt: skip


@dataclass(frozen=True)
class Project:
    """Where a script's local imports are looked up: next to it and, when given,
    below `root` (the project folder). `follow_imports=False` rewrites the script alone."""

    root: Path | None = None
    follow_imports: bool = True


@dataclass(frozen=True)
class Output:
    """Where results go: in place (default), a dry run (diff only), or another path."""

    dry_run: bool = False
    path: Path | None = None
    backup: bool = True


def rewrite_source(path: Path, text: str, options: OptimizeOptions) -> tuple[str, FileReport]:
    """The rewritten text and its report; the text is the input when nothing changes."""
    texts, report = rewrite_parsed(parse_source(path, text), options)
    return texts.get(path, text), report


def rewrite_sources(
    entry: Path,
    sources: Mapping[Path, str],
    options: OptimizeOptions,
    root: Path | None = None,
) -> tuple[dict[Path, str], FileReport]:
    """A project: the entry script and the modules of the project it imports, as
    {path: text} (`discover_project` finds them). Modules are named by their place
    next to the entry or below `root`. Returns the new text of each file that
    changes and one report for all of them."""
    return rewrite_parsed(parse_project(entry, sources, root), options)


def rewrite_parsed(source: Source, options: OptimizeOptions) -> tuple[dict[Path, str], FileReport]:
    """The new text of each file of `source` that changes, and the report."""
    path = source.path
    if inserted_marker_line(source) is not None:
        # the tool's own code is there: nothing to do, whatever analysis would say
        return {}, already_compressed(source, options)
    facts = analyze(source)
    report = FileReport(path=path, status=Status.UNCHANGED, found=facts.lines())
    if len(source.parts) > 1:
        report.files = [part.path for part in source.parts]
    if facts.already_optimized is not None:
        return {}, already_compressed(source, options, facts)
    refuse_quantizing_twice(facts, options)
    line_length = line_length_for(path)
    plan = make_plan(facts, options, line_length)
    rewritten = apply_plan(source, plan.edits, line_length)
    for part in source.parts:
        if part.path in rewritten:
            verify_rewrite(part.path, part.text, rewritten[part.path])
    _check_idempotent(source, rewritten)
    report.status = Status.TRANSFORMED
    report.placed = plan.placed
    report.warnings = plan.warnings + shared_signatures(source, plan.edits)
    report.placed[:0] = _followed_from_above(source)
    what = "fit call" if options.post_training else "hooks"
    if options.then_fit is not None:
        what = "hooks and fit call"
    techniques = options.name
    if options.recipe is not None:
        techniques = f"recipe {options.recipe} ({techniques})"
    report.message = f"{techniques} {what} inserted (target: {options.target})"
    if len(rewritten) > 1 or path not in rewritten:
        report.message += " in " + ", ".join(source.shown(p) for p in rewritten)
    return rewritten, report


def _followed_from_above(source: Source) -> list[str]:
    """A line naming the project folder and the modules followed, when the folder is
    above the script's (a script in tools/ importing the package at the root)."""
    root = getattr(source, "root", None)
    if len(source.parts) < 2 or root is None:
        return []
    root = Path(root).resolve()
    if root == source.path.resolve().parent:
        return []
    followed = ", ".join(
        str(part.path.resolve().relative_to(root))
        if part.path.resolve().is_relative_to(root)
        else str(part.path)
        for part in source.parts[1:]
    )
    return [f"project folder {root}: followed {followed}"]


def _check_idempotent(source: Source, rewritten: Mapping[Path, str]) -> None:
    """A second run must do nothing. It stops at the tool's marker before any analysis
    (`rewrite_parsed`), so the texts are enough when an inserted line carries it; only
    a rewrite without one is parsed and analysed again, as a second run would."""
    texts = {part.path: rewritten.get(part.path, part.text) for part in source.parts}
    if any(INSERTED_MARKER.search(line) for text in texts.values() for line in text.splitlines()):
        return
    if len(source.parts) == 1:
        again = parse_source(source.path, texts[source.path])
    else:
        again = parse_project(source.path, texts)
    if analyze(again).already_optimized is None:
        raise NeuralCoderError(
            "internal error: the rewritten file would be rewritten again; nothing was written",
            path=source.path,
        )


def optimize_file(
    path: Path, options: OptimizeOptions, output: Output = Output(), project: Project = Project()
) -> FileReport:
    """Rewrite one script, and the modules of its project where its training or
    evaluation lives; one report for all of them."""
    try:
        return _optimize_file(path, options, output, project)
    except Exception as error:  # every failure is a report, never a traceback
        if isinstance(error, NeuralCoderError):
            relocate(error)
        return failed(path, error)


@contextlib.contextmanager
def held_for_writing(path: Path, output: Output) -> Iterator[None]:
    """Before a read-rewrite-write of `path`: its destination is checked writable and the
    file is held against other runs (nothing to hold for a dry run)."""
    if output.dry_run:
        yield
        return
    target = output.path or path
    check_writable(target, backup=output.backup and target == path)
    with exclusive(path):
        yield


def _optimize_file(
    path: Path, options: OptimizeOptions, output: Output, project: Project
) -> FileReport:
    with held_for_writing(path, output):
        if is_notebook(path):
            # imported here: the notebook layer is built on this module's text API
            from neural_coder.notebooks import optimize_notebook_file

            return optimize_notebook_file(path, options, output)
        return _rewrite_file(path, options, output, project)


def _rewrite_file(
    path: Path, options: OptimizeOptions, output: Output, project: Project
) -> FileReport:
    text = read_text(path)
    sources = discover_project(path, text, project.root) if project.follow_imports else {}
    if len(sources) > 1:
        rewritten, report = rewrite_sources(path, sources, options, project.root)
    else:
        new_text, report = rewrite_source(path, text, options)
        rewritten = {path: new_text} if new_text != text else {}
    if not rewritten:
        return report
    originals = {p: text if p == path else read_text(p) for p in rewritten}
    report.diff = "".join(unified_diff(p, originals[p], t) for p, t in rewritten.items())
    if output.dry_run:
        return report
    if output.path is not None:
        single = to_output_file(path, rewritten, output.path, "rewrite")
        if isinstance(single, FileReport):
            return single
        rewritten = single
    if len(rewritten) == 1:
        ((target, new),) = rewritten.items()
        backup = write_atomic(target, new, backup=output.backup and target in (path, *sources))
        report.backup = backup if target == path else None
        if target != path and output.path is None:  # a module of the project, not the script
            report.files_written = [target]
    else:
        report.backup = write_all(rewritten, backup=output.backup).get(path)
        report.files_written = list(rewritten)
    report.output = output.path or path
    return report


def to_output_file(
    path: Path, texts: Mapping[Path, str], output_path: Path, verb: str
) -> dict[Path, str] | FileReport:
    """The script's new text, for `-o/--output`, which writes one file; the refusal when
    the `verb` ("rewrite", "revert") changes other files of the project too."""
    if set(texts) != {path}:
        return FileReport(
            path=path,
            status=Status.FAILED,
            message=f"{path}: -o/--output writes one file, but the {verb} changes "
            f"{len(texts)} files of the project; {verb} in place or use --diff",
            exit_code=2,
        )
    return {output_path: texts[path]}


def optimize(
    paths: Iterable[Path | str],
    options: OptimizeOptions,
    output: Output = Output(),
    project: Project = Project(),
    jobs: int | None = None,
) -> list[FileReport]:
    """Each script (and the scripts and notebooks below folders), the reports in that order;
    several files run in `jobs` processes (default: one per core)."""
    work = functools.partial(optimize_file, options=options, output=output, project=project)
    return run_files(work, python_files(paths), jobs, functools.partial(_project_files, project))


def _project_files(project: Project, path: Path) -> set[Path]:
    """The files a run on the script `path` may edit besides it: its project's modules."""
    if not project.follow_imports or is_notebook(path):
        return set()
    try:
        text = read_text(path)
    except NeuralCoderError:
        return set()
    found = discover_project(path, text, project.root, checked=False)
    return {p.resolve() for p in found}


def migrate_text(path: Path, text: str, target: str = "inc") -> tuple[str, FileReport]:
    """The migrated text of one INC 1.x script (reading the conf.yaml files it names) and its
    report; the text is the input when nothing changes. Raises NeuralCoderError."""
    from neural_coder.transforms.migrate_1x import migrate_source
    from neural_coder.transforms.migrate_1x.findings import TODO_PREFIX

    # a file that does not parse gets the same message as optimize
    parse_checked(path, text)
    result = migrate_source(text, path, target)
    if result.changed:
        verify_rewrite(path, text, result.code)
    report = FileReport(
        path=path, status=Status.TRANSFORMED if result.changed else Status.UNCHANGED
    )
    report.placed = [f.render() for f in result.findings if f.kind == "INFO"]
    report.warnings = [f.render() for f in result.todos]
    if result.changed and not result.migrated:  # only TODO comments: nothing was migrated
        report.status, report.exit_code = Status.FAILED, 1
        report.warnings = [f"{path}:{f.source_line or f.line}: {f.message}" for f in result.todos]
        report.message = (
            f"{path}: nothing could be migrated; the 1.x code is left as it was and the file "
            "was not written (the reasons below say what to change)"
        )
        return text, report
    if not result.changed:
        left = [
            f"{path}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if line.lstrip().startswith(TODO_PREFIX.strip())
        ]
        if left:  # an earlier run migrated what it could
            report.message = f"nothing more to migrate; {len(left)} TODO(s) from an earlier run are still in the code"
            report.warnings = left
        else:
            report.message = "no Intel Neural Compressor 1.x API in use; nothing to do"
        return text, report
    report.message = f"migrated to the INC 2.x API (target: {target}); {len(result.todos)} TODO(s) left in the code"
    return result.code, report


def migrate_file(path: Path, target: str = "inc", output: Output = Output()) -> FileReport:
    """Upgrade one INC 1.x script (and the conf.yaml files it names) to the 2.x API."""
    try:
        return _migrate_file(path, target, output)
    except Exception as error:  # every failure is a report, never a traceback
        return failed(path, error)


def _migrate_file(path: Path, target: str, output: Output) -> FileReport:
    with held_for_writing(path, output):
        if is_notebook(path):
            from neural_coder.notebooks import migrate_notebook_file

            return migrate_notebook_file(path, target, output)
        text = read_text(path)
        migrated, report = migrate_text(path, text, target)
        if migrated == text:
            return report
        report.diff = unified_diff(path, text, migrated)
        if not output.dry_run:
            report.output = output.path or path
            report.backup = write_atomic(
                report.output, migrated, backup=output.backup and report.output == path
            )
        return report


def is_notebook(path: Path) -> bool:
    return path.suffix == ".ipynb"


def python_files(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and the *.py and *.ipynb files below folders (sorted, hidden
    folders such as .ipynb_checkpoints skipped)."""
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found += sorted(
                p
                for p in entry.rglob("*")
                if p.suffix in (".py", ".ipynb")
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(entry).parts)
            )
        else:
            found.append(entry)
    return found


def migrate(
    paths: Iterable[Path | str],
    target: str = "inc",
    output: Output = Output(),
    jobs: int | None = None,
) -> list[FileReport]:
    """Each script (and those below folders), the reports in that order; several files run
    in `jobs` processes (default: one per core). A migration writes only its own script."""
    work = functools.partial(migrate_file, target=target, output=output)
    return run_files(work, python_files(paths), jobs)


def inspect_files(paths: Iterable[Path | str]) -> list[tuple[Path, list[str] | FileReport]]:
    """What analysis finds in each file (files as given, scripts and notebooks below folders),
    one line each; a file that cannot be read or parsed gets its failure report instead."""
    found: list[tuple[Path, list[str] | FileReport]] = []
    for path in python_files(paths):
        try:
            found.append((path, inspect_lines(path)))
        except Exception as error:
            found.append((path, failed(path, error)))
    return found


def inspect(path: Path | str, project: Project = Project()) -> Facts:
    """What analysis finds in the script, and in the modules of its project it imports."""
    path = Path(path)
    text = read_text(path)
    if project.follow_imports:
        return analyze(
            parse_project(path, discover_project(path, text, project.root), project.root)
        )
    return analyze(parse_source(path, text))


def inspect_lines(path: Path | str) -> list[str]:
    """What analysis finds, one line each; in a notebook, lines are `cell N line M`."""
    path = Path(path)
    if is_notebook(path):
        from neural_coder.notebooks import inspect_notebook

        return inspect_notebook(path)
    return inspect(path).lines()
