"""Generated code: values rendered as Python source, formatted with black, parsed to libcst.

Values are rendered by `snippets.render_value` (the one renderer of generated code);
`Call` and `Regex` are `Code` (source text) that remember what they were built from.
Only the generated snippets are formatted (`snippets.format_code`), never the user's file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import libcst as cst

from neural_coder.transforms.snippets import Code, call, format_code
from neural_coder.transforms.snippets import render_value as render

__all__ = ["Call", "Code", "Names", "Regex", "render"]


class Regex(Code):
    """A regex as a string literal (raw when it holds backslashes); `.pattern` is the regex."""

    pattern: str

    def __new__(cls, pattern: str) -> Regex:
        if "\\" in pattern and '"' not in pattern and not pattern.endswith("\\"):
            source = f'r"{pattern}"'
        else:
            source = repr(pattern)
        self = super().__new__(cls, source)
        self.pattern = pattern
        return self


class Call(Code):
    """`func(*args, **kwargs)` as source; `func` is a 2.x symbol name (see `targets.symbol`)
    until `quantization.localize` swaps in the local name (`symbol=False`: plain code,
    e.g. `torch.optim.SGD`)."""

    func: str
    kwargs: dict[str, object]
    args: list[object]
    symbol: bool

    def __new__(
        cls,
        func: str,
        kwargs: Mapping[str, object] | None = None,
        args: Sequence[object] = (),
        symbol: bool = True,
    ) -> Call:
        kwargs, args = dict(kwargs or {}), list(args)
        self = super().__new__(cls, call(func, kwargs, args))
        self.func, self.kwargs, self.args, self.symbol = func, kwargs, args, symbol
        return self


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
