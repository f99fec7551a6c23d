"""Edits over the files of a project: each edit lands in the file of the node it
points at, imports land in the files whose inserted code uses them, and the files
are written together or not at all."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import libcst as cst

from neural_coder.analysis import Source
from neural_coder.files import write_atomic
from neural_coder.transforms.edits import (
    AddImport,
    AddKeywordArgument,
    AddParameter,
    Edit,
    InsertStatements,
    ReplaceArgumentValue,
    ReplaceExpression,
    target_of,
)
from neural_coder.transforms.hooks import apply_edits
from neural_coder.transforms.written import module_code


def _inserted_code(edit: Edit) -> str:
    if isinstance(edit, InsertStatements | ReplaceExpression):
        return edit.code
    if isinstance(edit, AddKeywordArgument | ReplaceArgumentValue):
        return edit.value
    return ""


def split_edits(source: Source, edits: list[Edit]) -> dict[cst.Module, list[Edit]]:
    """The edits of each file (by its module). An import goes to every file whose
    inserted code reads the name it binds (the entry script when none does)."""
    per_file: dict[cst.Module, list[Edit]] = {}
    imports: list[AddImport] = []
    for edit in edits:
        node = target_of(edit)
        if node is None:
            assert isinstance(edit, AddImport)
            imports.append(edit)
        else:
            per_file.setdefault(source.module_of(node), []).append(edit)
    for edit in imports:
        bound = edit.name or edit.module.split(".")[0]
        word = re.compile(rf"(?<![\w.]){re.escape(bound)}\b")
        users = [
            module
            for module, file_edits in per_file.items()
            if any(word.search(_inserted_code(e)) for e in file_edits)
        ]
        for module in users or [source.module]:
            per_file.setdefault(module, []).append(edit)
    return per_file


def shared_signatures(source: Source, edits: list[Edit]) -> list[str]:
    """Warnings for functions of other files that gain a parameter: scripts outside
    the analysed project may call them too."""
    return [
        f"{source.shown(source.part_of(e.function).path)}:{source.positions[e.function].start.line}: "
        f"{e.function.name.value}() now takes {e.name}; other scripts that call it must pass one"
        for e in edits
        if isinstance(e, AddParameter) and source.module_of(e.function) is not source.module
    ]


def apply_plan(
    source: Source, edits: list[Edit], line_length: int | None = None
) -> dict[Path, str]:
    """The new text of every file the edits change, by path."""
    changed: dict[Path, str] = {}
    per_file = split_edits(source, edits)
    for part in source.parts:
        file_edits = per_file.get(part.module)
        if file_edits:
            edited = apply_edits(part.module, file_edits, line_length, source.parents)
            code = module_code(edited)
            if code != part.text:
                changed[part.path] = code
    return changed


def write_all(texts: Mapping[Path, str], backup: bool = True) -> dict[Path, Path | None]:
    """Write every file or none: all new texts go to temporary files next to their
    targets first; only when each is on disk are they renamed over the originals
    (a failure before that removes the temporaries and leaves every file as it was).
    Returns each file's backup (`file.bak`), or None."""
    if len(texts) == 1:
        ((path, text),) = texts.items()
        return {path: write_atomic(path, text, backup=backup)}
    temporaries: dict[Path, str] = {}
    try:
        for path, text in texts.items():
            descriptor, temporary = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
            )
            temporaries[path] = temporary
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if path.exists():
                shutil.copymode(path, temporary)
    except BaseException:
        for temporary in temporaries.values():
            Path(temporary).unlink(missing_ok=True)
        raise
    backups: dict[Path, Path | None] = {}
    for path in texts:
        backups[path] = None
        if backup and path.exists():
            backups[path] = path.with_name(path.name + ".bak")
            shutil.copy2(path, backups[path])
    for path, temporary in temporaries.items():
        os.replace(temporary, path)
    return backups
