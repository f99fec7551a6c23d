"""Add imports to a module's import block, each once.

What libcst's `AddImportsVisitor` (which the tool used before) does with no package name,
byte for byte, without importing `libcst.codemod` and with it `libcst.matchers` (together
longer to import than libcst itself: tests/coder/test_startup.py). Only the module's head
is read and changed:

* the import block is the run of import lines at the top of the module, after a docstring
  (or a `__strict__ = ...` flag) if the module starts with one. Unlike libcst, a line of
  several imports (`import a; import b`) belongs to the block instead of ending it. Imports
  further down, or under `if TYPE_CHECKING:`, do not count: they may not run first, or at all;
* an import already in that block is not added again; a name to import from a module that
  the block already imports from joins that `from` line, in front of its names (the plain
  names sorted, then the aliased ones);
* `from __future__` imports go first, right after the docstring; then the block; then the
  new `import x` lines (sorted), the new `import x as y` lines (in the order asked), then
  the new `from x import a, b` lines (modules sorted, those with an aliased name first,
  names sorted);
* the code after the imports gets a blank line above it, except where the module already
  had an import block that the code followed with no blank line (that layout is kept, so
  `revert` gives such a file back byte for byte).

`as_libcst=True` drops the two exceptions (a line of several imports ends the block; the
code always gets its blank line): libcst's layout exactly, which `migrate` keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import libcst as cst

#: (module, None) for `import module`, (module, name) for `from module import name`, and
#: either with a third item, the local name (`as ...`; None for none)
ImportRequest = tuple[str, str | None] | tuple[str, str | None, str | None]


def add_imports(
    module: cst.Module, imports: Iterable[ImportRequest], *, as_libcst: bool = False
) -> cst.Module:
    """`module` with `import m` (name None) or `from m import name` for each (m, name) of
    `imports` (with `as asname` for an (m, name, asname) whose asname is not None) that its
    import block lacks."""
    wanted = _Wanted(imports)
    body = list(module.body)
    start = 1 if _starts_with_docstring(body) else 0
    in_block = _is_single_import_line if as_libcst else _is_import_line
    end = start
    while end < len(body) and in_block(body[end]):
        end += 1

    block = [imp for line in body[start:end] for imp in line.body]  # type: ignore[attr-defined]
    wanted.drop_present(block)
    _merge_into_from_lines(body, start, end, wanted)
    from_lines = wanted.from_lines()
    if not wanted.modules and not wanted.module_aliases and not from_lines:
        return module.with_changes(body=body)

    config = module.config_for_parsing
    future = [
        cst.parse_statement(_from_line(m, names), config=config)
        for m, names in from_lines.items()
        if m == "__future__"
    ]
    new = [cst.parse_statement(f"import {m}", config=config) for m in sorted(wanted.modules)]
    new += [
        cst.parse_statement(f"import {m} as {asname}", config=config)
        for m, asname in wanted.module_aliases.items()
    ]
    new += [
        cst.parse_statement(_from_line(m, names), config=config)
        for m, names in from_lines.items()
        if m != "__future__"
    ]
    after = body[end:]
    if after and (as_libcst or not (start < end and not after[0].leading_lines)):
        after[0] = _with_blank_line_above(after[0])
    return module.with_changes(body=(*body[:start], *future, *body[start:end], *new, *after))


class _Wanted:
    """The imports asked for, less (after `drop_present`) those the block has."""

    def __init__(self, imports: Iterable[ImportRequest]) -> None:
        self.modules: set[str] = set()
        self.module_aliases: dict[str, str] = {}  # module -> local name, in the order asked
        names: dict[str, set[str]] = {}
        aliased: dict[str, list[tuple[str, str]]] = {}  # a list: asked twice, added twice
        for module_name, name, *rest in imports:
            asname = rest[0] if rest else None
            if module_name == "__future__" and name is None:
                raise ValueError("Cannot import __future__ directly!")
            if module_name == "__future__" and asname is not None:
                raise ValueError("Cannot import __future__ objects with aliases!")
            if name is None and asname is None:
                self.modules.add(module_name)
            elif name is None:
                self.module_aliases[module_name] = asname  # type: ignore[assignment]
            elif asname is None:
                names.setdefault(module_name, set()).add(name)
            else:
                aliased.setdefault(module_name, []).append((name, asname))
        self.names = dict(sorted(names.items()))
        self.aliased = dict(sorted(aliased.items()))

    def drop_present(self, block: Sequence[cst.BaseSmallStatement]) -> None:
        present_aliases: dict[str, str] = {}
        for imp in block:
            if isinstance(imp, cst.Import):
                for alias in imp.names:
                    if alias.asname is None:
                        self.modules.discard(alias.evaluated_name)
                    else:
                        present_aliases[alias.evaluated_name] = alias.evaluated_alias  # type: ignore[assignment]
                continue
            module = _from_module(imp)  # type: ignore[arg-type]
            if module is None:
                continue
            if isinstance(imp.names, cst.ImportStar):  # type: ignore[union-attr]
                self.names.pop(module, None)
                continue
            for alias in imp.names:  # type: ignore[union-attr]
                if alias.asname is None:
                    self._drop(self.names, module, alias.evaluated_name)
                else:
                    pair = (alias.evaluated_name, alias.evaluated_alias)
                    self._drop(self.aliased, module, pair)  # type: ignore[arg-type]
        for module_name, asname in present_aliases.items():
            if self.module_aliases.get(module_name) == asname:
                del self.module_aliases[module_name]

    @staticmethod
    def _drop(wanted: dict, module: str, item: object) -> None:
        if module in wanted and item in wanted[module]:
            wanted[module].remove(item)
            if not wanted[module]:
                del wanted[module]

    def take(self, module: str) -> list[cst.ImportAlias] | None:
        """The names for an existing `from module import ...` line, taken off what is left."""
        if module not in self.names and module not in self.aliased:
            return None
        names = [cst.ImportAlias(name=cst.Name(n)) for n in sorted(self.names.pop(module, ()))]
        names += [
            cst.ImportAlias(name=cst.Name(n), asname=cst.AsName(name=cst.Name(a)))
            for n, a in sorted(self.aliased.pop(module, ()))
        ]
        return names

    def from_lines(self) -> dict[str, list[tuple[str, str | None]]]:
        """module -> its (name, local name or None), sorted; the modules with an aliased name
        first."""
        lines: dict[str, list[tuple[str, str | None]]] = {m: [*a] for m, a in self.aliased.items()}
        for module_name, names in self.names.items():
            lines.setdefault(module_name, []).extend((n, None) for n in names)
        return {m: sorted(names) for m, names in lines.items()}  # type: ignore[type-var]


def _starts_with_docstring(body: Sequence[cst.BaseStatement]) -> bool:
    """A docstring (one plain string) or a `__strict__ = ...` flag: the imports go below it."""
    if not body or not isinstance(body[0], cst.SimpleStatementLine) or len(body[0].body) != 1:
        return False
    first = body[0].body[0]
    if isinstance(first, cst.Expr):
        return isinstance(first.value, cst.SimpleString)
    return (
        isinstance(first, cst.Assign)
        and len(first.targets) == 1
        and isinstance(first.targets[0].target, cst.Name)
        and first.targets[0].target.value == "__strict__"
    )


def _is_import_line(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(s, cst.Import | cst.ImportFrom) for s in statement.body
    )


def _is_single_import_line(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Import | cst.ImportFrom)
    )


def _from_module(imp: cst.ImportFrom) -> str | None:
    """The module of an absolute `from` import; None for a relative one (which module it
    names depends on the package, unknown here)."""
    if imp.relative or imp.module is None:
        return None
    return _dotted(imp.module)


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    assert isinstance(node, cst.Name)
    return node.value


def _merge_into_from_lines(
    body: list[cst.BaseStatement], start: int, end: int, wanted: _Wanted
) -> None:
    """Put each module's missing names in front of the first `from` line of the block that
    imports from that module (and take that module off what is `wanted`)."""
    for index in range(start, end):
        line = body[index]
        assert isinstance(line, cst.SimpleStatementLine)
        for position, imp in enumerate(line.body):
            if not isinstance(imp, cst.ImportFrom) or isinstance(imp.names, cst.ImportStar):
                continue
            module = _from_module(imp)
            names = None if module is None else wanted.take(module)
            if names is None:
                continue
            merged = imp.with_changes(names=[*names, *imp.names])
            line = line.with_changes(
                body=[*line.body[:position], merged, *line.body[position + 1 :]]
            )
        body[index] = line


def _from_line(module: str, names: Sequence[tuple[str, str | None]]) -> str:
    listed = ", ".join(name if asname is None else f"{name} as {asname}" for name, asname in names)
    return f"from {module} import {listed}"


def _with_blank_line_above(statement: cst.BaseStatement) -> cst.BaseStatement:
    lines = statement.leading_lines
    if lines and lines[0].comment is None:
        return statement
    return statement.with_changes(leading_lines=(cst.EmptyLine(), *lines))
