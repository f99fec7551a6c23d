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
  the block already imports from joins that `from` line, in front of its names;
* `from __future__` imports go first, right after the docstring; then the block; then the
  new `import x` lines (sorted), then the new `from x import a, b` lines (modules sorted,
  names sorted);
* the code after the imports gets a blank line above it, except where the module already
  had an import block that the code followed with no blank line (that layout is kept, so
  `revert` gives such a file back byte for byte).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import libcst as cst


def add_imports(module: cst.Module, imports: Iterable[tuple[str, str | None]]) -> cst.Module:
    """`module` with `import m` (name None) or `from m import name` for each (m, name) of
    `imports` that its import block lacks."""
    wanted_modules: set[str] = set()
    wanted_names: dict[str, set[str]] = {}
    for module_name, name in imports:
        if name is None:
            if module_name == "__future__":
                raise ValueError("Cannot import __future__ directly!")
            wanted_modules.add(module_name)
        else:
            wanted_names.setdefault(module_name, set()).add(name)
    body = list(module.body)
    start = 1 if _starts_with_docstring(body) else 0
    end = start
    while end < len(body) and _is_import_line(body[end]):
        end += 1

    block = [imp for line in body[start:end] for imp in line.body]  # type: ignore[attr-defined]
    wanted_modules -= _imported_modules(block)
    names_left = _names_left(block, dict(sorted(wanted_names.items())))
    _merge_into_from_lines(body, start, end, names_left)
    if not wanted_modules and not names_left:
        return module.with_changes(body=body)

    config = module.config_for_parsing
    future = [
        cst.parse_statement(_from_line(m, names), config=config)
        for m, names in names_left.items()
        if m == "__future__"
    ]
    new = [cst.parse_statement(f"import {m}", config=config) for m in sorted(wanted_modules)]
    new += [
        cst.parse_statement(_from_line(m, names), config=config)
        for m, names in names_left.items()
        if m != "__future__"
    ]
    after = body[end:]
    if after and not (start < end and not after[0].leading_lines):
        after[0] = _with_blank_line_above(after[0])
    return module.with_changes(body=(*body[:start], *future, *body[start:end], *new, *after))


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


def _imported_modules(block: Sequence[cst.BaseSmallStatement]) -> set[str]:
    """The modules that `import m` (without `as`) lines of the block import."""
    return {
        alias.evaluated_name
        for imp in block
        if isinstance(imp, cst.Import)
        for alias in imp.names
        if alias.asname is None
    }


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


def _names_left(
    block: Sequence[cst.BaseSmallStatement], wanted: dict[str, set[str]]
) -> dict[str, set[str]]:
    """The names of `wanted` (module -> names) that the block's `from` lines do not import
    under their own name (`from m import *` imports them all)."""
    left = {module: set(names) for module, names in wanted.items()}
    for imp in block:
        if not isinstance(imp, cst.ImportFrom):
            continue
        module = _from_module(imp)
        if module not in left:
            continue
        if isinstance(imp.names, cst.ImportStar):
            del left[module]
            continue
        left[module] -= {alias.evaluated_name for alias in imp.names if alias.asname is None}
        if not left[module]:
            del left[module]
    return left


def _merge_into_from_lines(
    body: list[cst.BaseStatement], start: int, end: int, names_left: dict[str, set[str]]
) -> None:
    """Put each module's missing names in front of the first `from` line of the block that
    imports from that module (and take that module off `names_left`)."""
    for index in range(start, end):
        line = body[index]
        assert isinstance(line, cst.SimpleStatementLine)
        for position, imp in enumerate(line.body):
            if not isinstance(imp, cst.ImportFrom) or isinstance(imp.names, cst.ImportStar):
                continue
            module = _from_module(imp)
            if module is None or module not in names_left:
                continue
            names = sorted(names_left.pop(module))
            merged = imp.with_changes(
                names=[*(cst.ImportAlias(name=cst.Name(name)) for name in names), *imp.names]
            )
            line = line.with_changes(
                body=[*line.body[:position], merged, *line.body[position + 1 :]]
            )
        body[index] = line


def _from_line(module: str, names: set[str]) -> str:
    return f"from {module} import {', '.join(sorted(names))}"


def _with_blank_line_above(statement: cst.BaseStatement) -> cst.BaseStatement:
    lines = statement.leading_lines
    if lines and lines[0].comment is None:
        return statement
    return statement.with_changes(leading_lines=(cst.EmptyLine(), *lines))
