"""A project of several files analysed as one: the entry script and the local
modules it imports (`from engine import train_one_epoch`, `import utils.train_utils`,
`from .loops import train`), followed transitively.

`ProjectSource` is a `Source` whose nodes come from every file: positions and
parent links are merged (libcst nodes are distinct objects, so one map serves all
files), `module_of` tells which file a node lives in, and `resolve_import` maps a
dotted import to the module of the project that defines it. The index built over
it spans the files, so the analysis follows a training loop into the module where
it lives, and edits land in the file of the node they point at.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from neural_coder.errors import NeuralCoderError, ParseError
from neural_coder.files import read_text
from neural_coder.transforms.positions import Positions

from .index import Index
from .source import Source, parse_source

MAX_MODULES = 64  # a project this large is analysed from the modules nearest the script


class SourceLine(int):
    """A line number in a file other than the entry script: it prints with its file,
    so a message that names a line also names where it is."""

    path: Path
    shown: str

    def __new__(cls, number: int, path: Path, shown: str) -> SourceLine:
        line = super().__new__(cls, number)
        line.path = path
        line.shown = shown
        return line

    def __str__(self) -> str:
        return f"{int(self)} ({self.shown})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


@dataclass
class ProjectSource(Source):
    """The entry script (`path`, `text`, `module` are its own) and the modules it
    imports from the project."""

    others: list[Source] = field(default_factory=list)
    names: dict[str, cst.Module] = field(default_factory=dict)  # dotted module name -> module
    root: Path = field(default_factory=Path)
    _owner: dict[cst.CSTNode, cst.Module] = field(default_factory=dict, repr=False)
    _by_module: dict[cst.Module, Source] = field(default_factory=dict, repr=False)
    _dotted: dict[cst.Module, str] = field(default_factory=dict, repr=False)

    @property
    def parts(self) -> list[Source]:
        return [self._entry, *self.others]

    @property
    def _entry(self) -> Source:
        return self._by_module[self.module]

    def part_of(self, node: cst.CSTNode) -> Source:
        return self._by_module[self.module_of(node)]

    def module_of(self, node: cst.CSTNode) -> cst.Module:
        if isinstance(node, cst.Module):
            return node
        found = self._owner.get(node)
        if found is None:
            chain = list(self.ancestors(node))
            found = chain[-1] if chain and isinstance(chain[-1], cst.Module) else self.module
            self._owner[node] = found
        return found

    def line(self, node: cst.CSTNode) -> int:
        number = self.positions[node].start.line
        module = self.module_of(node)
        if module is self.module:
            return number
        return self.numbered(self._by_module[module], number)

    def numbered(self, part: Source, number: int) -> int:
        if part.module is self.module:
            return number
        return SourceLine(number, part.path, self.shown(part.path))

    def line_text(self, node: cst.CSTNode) -> str:
        part = self.part_of(node)
        return part.text.split("\n")[self.positions[node].start.line - 1]

    def shown(self, path: Path) -> str:
        """`path` as the report shows it: relative to the entry script's folder when below it."""
        try:
            return str(path.resolve().relative_to(self.path.resolve().parent))
        except ValueError:
            return str(path)

    def resolve_import(self, dotted: str, at: cst.CSTNode) -> tuple[cst.Module, str] | None:
        if dotted.startswith("."):
            dotted = self._absolute(dotted, self.module_of(at))
            if not dotted:
                return None
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            module = self.names.get(".".join(parts[:cut]))
            if module is not None:
                return module, ".".join(parts[cut:])
        return None

    def _absolute(self, relative: str, importer: cst.Module) -> str:
        """`.engine.f` imported in package `pkg.main` -> `pkg.engine.f`."""
        dots = len(relative) - len(relative.lstrip("."))
        package = self._dotted.get(importer, "").split(".")
        part = self._by_module.get(importer)
        if part is None or part.path.name != "__init__.py":
            package = package[:-1]  # a module's package is its parent
        if dots - 1 > len(package):
            return ""
        base = package[: len(package) - (dots - 1)]
        return ".".join([*base, relative[dots:]]).strip(".")


def build_project(
    entry: Source, others: Iterable[Source], names: Mapping[str, Source], root: Path
) -> ProjectSource:
    others = list(others)
    positions = Positions.joined(part.positions for part in (entry, *others))
    parents: dict = {}
    for part in (entry, *others):
        parents.update(part.parents)
    project = ProjectSource(
        path=entry.path,
        text=entry.text,
        module=entry.module,
        positions=positions,
        parents=parents,
        others=others,
        names={name: part.module for name, part in names.items()},
        root=root,
    )
    project._by_module = {part.module: part for part in (entry, *others)}
    for name, part in sorted(names.items(), key=lambda item: len(item[0])):
        project._dotted.setdefault(part.module, name)
    return project


# -- finding the project's files ---------------------------------------------------------------


def python_tree(text: str) -> ast.Module | None:
    """The file read with Python's own parser (a tenth of a libcst parse); None when it
    does not parse."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def imported_names(text: str | ast.Module | None) -> list[tuple[str, list[str]]]:
    """(dotted module, names imported from it) for each import statement, anywhere in
    the file (imports inside functions and `if` blocks count), in the order they are
    written. [] when the text does not parse."""
    tree = python_tree(text) if isinstance(text, str) else text
    if tree is None:
        return []
    found: list[tuple[str, list[str]]] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            dotted = "." * node.level + (node.module or "")
            names = [alias.name for alias in node.names if alias.name != "*"]
            found.append((dotted, names))
        else:
            pending.extend(reversed(list(ast.iter_child_nodes(node))))
    return found


def module_file(dotted: str, folders: Iterable[Path]) -> Path | None:
    """The file a dotted module name is, looked up in `folders` in order."""
    parts = dotted.split(".")
    for folder in folders:
        candidate = folder.joinpath(*parts)
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if path.is_file():
                return path.resolve()
    return None


def local_imports(
    path: Path, text: str | ast.Module | None, folders: list[Path]
) -> list[tuple[str, Path]]:
    """(dotted name, file) of each module of the project that the file imports."""
    found: list[tuple[str, Path]] = []
    for dotted, names in imported_names(text):
        if dotted.startswith("."):
            dots = len(dotted) - len(dotted.lstrip("."))
            base = path.parent
            for _ in range(dots - 1):
                base = base.parent
            rest = dotted[dots:]
            lookups = [(rest, [base])] if rest else []
            lookups += [(f"{rest}.{n}".strip("."), [base]) for n in names]
        else:
            lookups = [(dotted, folders)] + [(f"{dotted}.{n}", folders) for n in names]
        for name, where in lookups:
            target = module_file(name, where)
            if target is not None:
                found.append((name, target))
    return found


REPOSITORY_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")


def default_root(entry: Path, text: str) -> Path | None:
    """The project folder when none is given: the nearest folder above the script from
    which a module the script imports resolves, when its own folder lacks it
    (`projects/chargpt/chargpt.py` importing `mingpt.model` from the repository root).
    The walk stops at a repository's top (.git, pyproject.toml, setup.py, setup.cfg),
    at the working folder when that is above the script, and at the filesystem root;
    None when nothing is found."""
    entry = entry.resolve()
    wanted = [
        [dotted, *(f"{dotted}.{name}" for name in names)]
        for dotted, names in imported_names(text)
        if dotted and not dotted.startswith(".")
    ]
    wanted = [names for names in wanted if not any(module_file(n, [entry.parent]) for n in names)]
    if not wanted:
        return None
    cwd = Path.cwd().resolve()
    folder = entry.parent
    while True:
        if folder != entry.parent and any(
            module_file(n, [folder]) for names in wanted for n in names
        ):
            return folder
        if (
            (
                folder == cwd and folder != entry.parent
            )  # a working folder above the script bounds the walk
            or folder.parent == folder
            or any((folder / marker).exists() for marker in REPOSITORY_MARKERS)
        ):
            return None
        folder = folder.parent


def discover_project(
    entry_path: Path, entry_text: str, root: Path | None = None, checked: bool = True
) -> dict[Path, str]:
    """The entry script and every module of the project it imports, transitively, as
    {path: text}. Modules are looked up next to the script and below `root` (the
    project folder; by default the script's folder); files outside them are libraries.
    The entry keeps its path as given; the others are named as seen from it
    (`proj/main.py` imports `proj/engine.py`). A module that cannot be read or
    parsed is left out, as a library would be: the script's own rewrite does not
    depend on it (`checked=False` keeps it: every file the script's run may read)."""
    given = entry_path
    entry_path = entry_path.resolve()
    root = root if root is not None else default_root(entry_path, entry_text)
    folders = [entry_path.parent] + ([root.resolve()] if root is not None else [])
    texts: dict[Path, str] = {entry_path: entry_text}
    pending = [entry_path]
    while pending and len(texts) < MAX_MODULES:
        path = pending.pop(0)
        tree = python_tree(texts[path])
        if tree is None and checked and path != entry_path:
            # (the entry's own syntax error is reported by analysis; one that Python
            # accepts and libcst does not is left out by parse_project)
            del texts[path]
            continue
        for _, target in local_imports(path, tree, folders):
            if target in texts or not any(_is_below(target, f) for f in folders):
                continue
            try:
                texts[target] = read_text(target)
            except NeuralCoderError:
                continue
            pending.append(target)
    named = {given: entry_text}
    for path, text in list(texts.items())[1:]:
        named[_as_seen_from(given, entry_path, path)] = text
    return named


def _as_seen_from(given: Path, entry: Path, path: Path) -> Path:
    """`path` named like the entry script was: next to it, relative to the working
    folder, or absolute."""
    if _is_below(path, entry.parent):
        return given.parent / path.relative_to(entry.parent)
    if not given.is_absolute() and _is_below(path, Path.cwd()):
        return path.relative_to(Path.cwd())
    return path


def module_names(paths: Iterable[Path], folders: list[Path]) -> dict[str, Path]:
    """Every dotted name under which the files can be imported from `folders`."""
    names: dict[str, Path] = {}
    for path in paths:
        for folder in folders:
            if not _is_below(path.resolve(), folder):
                continue
            parts = list(path.resolve().relative_to(folder).with_suffix("").parts)
            if parts and parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                names.setdefault(".".join(parts), path)
    return names


def parse_project(entry: Path, texts: Mapping[Path, str], root: Path | None = None) -> Source:
    """One `Source` for the files: the entry alone when it imports nothing of the project."""
    entry_source = parse_source(entry, texts[entry])
    others = []
    for path, text in texts.items():
        if path != entry:
            try:
                others.append(parse_source(path, text))
            except ParseError:  # a module that does not parse is left out, as a library is
                continue
    if not others:
        return entry_source
    root = root if root is not None else default_root(entry, texts[entry])
    folders = [entry.resolve().parent] + ([root.resolve()] if root is not None else [])
    by_path = {part.path: part for part in (entry_source, *others)}
    names = {name: by_path[path] for name, path in module_names(by_path, folders).items()}
    return build_project(entry_source, others, names, root or entry.parent)


def _is_below(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


# -- what the entry script runs ------------------------------------------------------------------


def reached_scopes(index: Index) -> set[cst.CSTNode]:
    """The functions the entry script's code calls, directly or through other
    functions of the project (constructors and the methods of instances included)."""
    by_scope: dict[cst.CSTNode, list[cst.Call]] = {}
    for call in index.calls:
        by_scope.setdefault(index.scope_of(call), []).append(call)
    entry = index.source.module
    pending = [
        call
        for scope, calls in by_scope.items()
        if index.source.module_of(scope) is entry
        for call in calls
    ]
    nested: dict[cst.CSTNode, list[cst.FunctionDef]] = {}  # function -> the defs inside it
    for node in index.functions:
        outer = index.source.enclosing_function(node)
        if outer is not None:
            nested.setdefault(outer, []).append(node)
    reached: set[cst.CSTNode] = set()
    while pending:
        fn = index.resolve_call(pending.pop())
        if fn is None or fn.node in reached:
            continue
        inside = [fn.node]
        while inside:  # its own calls, and those of the functions defined inside it
            node = inside.pop()
            reached.add(node)
            pending += by_scope.get(node, [])
            inside += nested.get(node, [])
    return reached


def in_reach(index: Index, node: cst.CSTNode, reached: set[cst.CSTNode]) -> bool:
    """`node` is in the entry script, or in a function it reaches."""
    source = index.source
    if source.module_of(node) is source.module:
        return True
    return any(a in reached for a in source.ancestors(node) if isinstance(a, cst.FunctionDef))


def relocate(error: NeuralCoderError) -> NeuralCoderError:
    """An error raised at a line of another file of the project names that file."""
    if isinstance(error.line, SourceLine):
        error.path, error.line = error.line.path, int(error.line)
    return error
