"""Generated code: values rendered as Python source, formatted with black, parsed to libcst.

Only the generated snippets are formatted (`snippets.format_code`), never the user's file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import libcst as cst

from neural_coder.transforms.snippets import Code, format_code


class Regex(str):
    """A string rendered as a raw string literal when it holds backslashes."""


@dataclass
class Call:
    """`func(*args, **kwargs)` where `func` is a 2.x symbol name (see `targets.symbol`)."""

    func: str
    kwargs: Mapping[str, object] = field(default_factory=dict)
    args: Sequence[object] = ()
    symbol: bool = True  # False: `func` is plain code (e.g. `torch.optim.SGD`)


def render(value: object) -> str:
    """Python source of a value made of literals, `Code`, `Regex` and `Call`."""
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, Regex):
        text = str(value)
        if "\\" in text and '"' not in text and not text.endswith("\\"):
            return f'r"{text}"'
        return repr(text)
    if isinstance(value, Call):
        parts = [render(a) for a in value.args]
        parts += [f"{k}={render(v)}" for k, v in value.kwargs.items()]
        return f"{value.func}({', '.join(parts)})"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(render(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items()) + "}"
    return repr(value)


def symbols_in(value: object) -> Iterator[str]:
    """The 2.x symbols a value calls (to import them)."""
    if isinstance(value, Call):
        if value.symbol:
            yield value.func
        for item in [*value.args, *value.kwargs.values()]:
            yield from symbols_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from symbols_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from symbols_in(item)


def statements(code: str, line_length: int) -> list[cst.BaseStatement]:
    """Parse generated statements, formatted with black to `line_length`."""
    return list(cst.parse_module(format_code(code, line_length)).body)


def expression(code: str, line_length: int) -> cst.BaseExpression:
    """Parse a generated expression, formatted with black as the value of an assignment."""
    stmt = statements(f"_ = {code}\n", line_length)[0]
    assert isinstance(stmt, cst.SimpleStatementLine)
    assign = stmt.body[0]
    assert isinstance(assign, cst.Assign)
    return assign.value


def code_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def comment_lines(texts: Iterable[str]) -> list[cst.EmptyLine]:
    return [cst.EmptyLine(indent=True, comment=cst.Comment(t)) for t in texts]


class Names:
    """Fresh names that clash with nothing the file binds or reads."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)

    def fresh(self, base: str) -> str:
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name
