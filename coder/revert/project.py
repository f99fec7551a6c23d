"""`revert` on a project: the entry script and the modules of its project that `optimize`
rewrote with it (hooks in `engine.py`'s `train_one_epoch`, a save in `utils.py` wrapped in
`tensors_only`), reverted together. Proven together as one file is: every file carrying
the tool's code is stripped, the project rewrite runs again on the stripped texts with
the approach and settings read back from them, and it must give back every current file
exactly; otherwise nothing is reverted and the refusal names the files and lines."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from neural_coder.already_compressed import compression_in
from neural_coder.analysis.project import REPOSITORY_MARKERS, discover_project
from neural_coder.api import rewrite_sources
from neural_coder.errors import NeuralCoderError
from neural_coder.files import read_text
from neural_coder.transforms.snippets import MARKER

from .differences import (
    RevertRefused,
    differences_message,
    edited_lines,
    marked_lines,
    similarity,
)
from .inline import STATE_DICT_WRAPPERS
from .settings import MAX_TRIES, asked_for, candidate_options
from .strip import inserted_names, strip_inserted

#: the tool's edits inside a module's own expressions, which carry no marker
INLINE_EDIT = re.compile(
    r"^\s*from neural_coder\.runtime[\w.]* import"
    rf"|\b(?:{'|'.join(STATE_DICT_WRAPPERS)})\("
    r"|\bOptimizedModel\.from_pretrained\(",
    re.M,
)


def has_inline_edits(text: str) -> bool:
    """`save_file(tensors_only(...))`, `OptimizedModel.from_pretrained(...)` or an import
    from the runtime: code the tool writes into a module's own lines, without a marker."""
    return INLINE_EDIT.search(text) is not None


def carries_inserted_code(text: str) -> bool:
    return MARKER in text or bool(compression_in(text)) or has_inline_edits(text)


@dataclass
class ProjectRevert:
    """The proven originals of the files that change, and what optimize was asked for."""

    originals: dict[Path, str]
    asked: str
    target: str


def revert_project(entry: Path, sources: Mapping[Path, str], root: Path | None) -> ProjectRevert:
    """The originals of the project's files (`discover_project`'s {path: text}, the entry
    first); raises `RevertRefused` when the project rewrite does not reproduce them all."""
    carrying = {p: t for p, t in sources.items() if carries_inserted_code(t)}
    stripped = {}
    bound: set[str] = set()
    for path, text in carrying.items():
        try:
            bound |= inserted_names(text)
        except cst.ParserSyntaxError as error:
            raise NeuralCoderError(
                f"does not parse: {error.message}", path=path, line=error.raw_line
            ) from None
    # a module the tool only threads the manager through (a parameter, a keyword argument)
    threaded = re.compile(r"\bcompression_manager\w*\b")
    carrying = {p: t for p, t in sources.items() if p in carrying or (bound and threaded.search(t))}
    for path, text in carrying.items():
        stripped[path] = strip_inserted(text, bound)
    candidate = {p: stripped[p].text if p in stripped else t for p, t in sources.items()}
    # what optimize was asked for, read back from every file's inserted code, entry first
    joined = "".join(t if t.endswith("\n") else t + "\n" for t in carrying.values())
    first = "inc" if any(s.target == "inc" for s in stripped.values()) else "runtime"
    tried: list[dict[Path, str]] = []
    for approach, target, options in candidate_options(joined, first):
        if len(tried) >= MAX_TRIES:
            break
        try:
            rewritten, _ = rewrite_sources(entry, candidate, options, root)
        except NeuralCoderError:
            continue
        again = {p: rewritten.get(p, candidate[p]) for p in sources}
        if again == dict(sources):
            originals = {p: t for p, t in candidate.items() if t != sources[p]}
            return ProjectRevert(originals, asked_for(approach, options), target)
        tried.append(again)
    raise _refusal(entry, sources, carrying, tried)


def _refusal(
    entry: Path,
    sources: Mapping[Path, str],
    carrying: Mapping[Path, str],
    tried: list[dict[Path, str]],
) -> RevertRefused:
    """The lines, file by file, that the closest reproduction does not have."""
    if tried:
        best = max(
            tried, key=lambda again: sum(similarity(t, again[p]) for p, t in sources.items())
        )
        found = {p: edited_lines(t, best[p]) for p, t in sources.items() if best[p] != t}
    else:
        found = {p: marked_lines(t) for p, t in carrying.items()}
    found = {p: lines for p, lines in found.items() if lines}
    listed = [
        f"  {shown(entry, p)} line {n}: {line.strip()}"
        for p, lines in found.items()
        for n, line in lines
    ]
    path, lines = next(iter(found.items()), (entry, []))
    backups = ", ".join(f"{p.name}.bak" for p in carrying)
    return RevertRefused(
        differences_message(listed, reproduced=bool(tried)),
        path=path,
        line=lines[0][0] if lines else None,
        hint=f"undo those edits, or restore {backups}; no file of the project was reverted",
    )


def shown(entry: Path, path: Path) -> str:
    """`path` as seen from the entry script's folder (`engine.py`, `../lightnet/engine.py`)."""
    return os.path.relpath(path.resolve(), entry.resolve().parent)


# -- a module of a project, reverted on its own ---------------------------------------------

MAX_SCRIPTS = 200  # scripts looked at for the one whose project holds a module
MAX_LEVELS = 4  # folders above a module looked in


class RewrittenWithEntry(RevertRefused):
    """A module that `optimize` on another script (the project's entry) rewrote."""

    def __init__(self, module: Path, entry: Path) -> None:
        self.entry = entry
        super().__init__(
            f"{module.name} is a module of the project of {entry}, which optimize rewrote "
            "together with it; reverting it alone would leave the files of the project "
            "out of step, so nothing was reverted",
            path=module,
            hint=f"run `neural-coder revert {entry}`: it reverts every file of the project "
            "together",
        )


def module_refusal(module: Path, text: str) -> RevertRefused:
    """The tool's in-line edits in a module that optimize on the module alone does not
    reproduce, and no script near it whose project revert covers it was found."""
    line = next(
        (n for n, line in enumerate(text.splitlines(), 1) if INLINE_EDIT.search(line)), None
    )
    return RevertRefused(
        f"{module.name} carries code neural-coder writes into the modules of a project, but "
        "optimize on this file alone does not give it; nothing was reverted",
        path=module,
        line=line,
        hint="run `neural-coder revert` on the script optimize was run on (the project's "
        "entry script; add --project FOLDER if it was given to optimize): it reverts its "
        "modules with it",
    )


def entry_reverting(module: Path, root: Path | None) -> Path | None:
    """The script near `module` whose project revert gives back an original of `module`
    (optimize was run on that script and edited the module), or None."""
    for entry, sources in _scripts_importing(module, root):
        try:
            reverted = revert_project(entry, sources, root)
        except NeuralCoderError:
            continue
        if any(p.resolve() == module.resolve() for p in reverted.originals):
            return entry
    return None


def _scripts_importing(module: Path, root: Path | None) -> list[tuple[Path, dict[Path, str]]]:
    """(script, its project) for the scripts whose project holds `module`: looked for in
    the module's folder and those above it (up to a repository's top), and in their
    subfolders (`tools/train.py` importing `lightnet/engine.py`)."""
    module = module.resolve()
    name = module.parent.name if module.name == "__init__.py" else module.stem
    mentions = re.compile(rf"^\s*(?:from|import)\s[^\n]*\b{re.escape(name)}\b", re.M)
    found: list[tuple[Path, dict[Path, str]]] = []
    for script in _nearby_scripts(module):
        try:
            text = read_text(script)
        except NeuralCoderError:
            continue
        if not mentions.search(text):
            continue
        sources = discover_project(_as_given(script), text, root)
        if any(p.resolve() == module for p in sources):
            found.append((_as_given(script), sources))
    return found


def _nearby_scripts(module: Path) -> list[Path]:
    """Bounded as `default_root` is: by a repository's top and by the working folder."""
    scripts: list[Path] = []
    folder = module.parent
    cwd = Path.cwd().resolve()
    for _ in range(MAX_LEVELS):
        for pattern in ("*.py", "*/*.py"):
            scripts += sorted(
                p
                for p in folder.glob(pattern)
                if p != module and p not in scripts and not p.name.startswith(".")
            )
        if len(scripts) >= MAX_SCRIPTS or folder.parent == folder:
            break
        if folder == cwd and folder != module.parent:  # a working folder above the module
            break
        if any((folder / marker).exists() for marker in REPOSITORY_MARKERS):
            break
        folder = folder.parent
    return scripts[:MAX_SCRIPTS]


def _as_given(path: Path) -> Path:
    """`path` relative to the working folder when below it, as a person would type it."""
    relative = os.path.relpath(path)
    return Path(relative) if not relative.startswith("..") else path
