"""What a condition read from command-line options is on a run with the defaults.

`pretrained = weights.endswith(".pt")`, where `weights` is `opt.weights` and
`--weights` defaults to `ROOT / "yolov5s.pt"`: on the default run the condition holds.
Only literal defaults, names bound from options, and a few string methods are read;
anything else is unknown (None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from neural_coder.transforms import match as m

from .index import Index, Scope

STRING_METHODS = ("endswith", "startswith")
CONVERSIONS = ("str", "Path", "bool")
UNKNOWN = object()


def add_argument_of(index: Index, dest: str) -> tuple[str, dict[str, cst.BaseExpression]] | None:
    """The last flag (`--weights`) and the keywords of the `add_argument` call whose
    destination is `dest`."""
    for call in index.calls:
        if not m.matches(call.func, m.Attribute(attr=m.Name("add_argument"))):
            continue
        flags = [
            a.value.evaluated_value
            for a in call.args
            if a.keyword is None and isinstance(a.value, cst.SimpleString)
        ]
        keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        names = [f.lstrip("-").replace("-", "_") for f in flags if isinstance(f, str)]
        if isinstance(keywords.get("dest"), cst.SimpleString):
            names = [keywords["dest"].evaluated_value]  # type: ignore[union-attr]
        if dest in names and flags:
            return str(flags[-1]), keywords
    return None


@dataclass
class DefaultRun:
    index: Index
    scope: Scope
    flags: list[str] = field(default_factory=list)

    def holds(self, test: cst.BaseExpression, line: int) -> bool:
        """Whether `test` (read at `line`) is true on a run with the defaults, read from
        options alone."""
        value = self.value(test, line, 0)
        return value is not UNKNOWN and bool(value) and bool(self.flags)

    def value(self, node: cst.BaseExpression, line: int, depth: int) -> Any:
        if depth > 6:
            return UNKNOWN
        if isinstance(node, cst.SimpleString):
            return node.evaluated_value
        if isinstance(node, cst.Integer):
            return int(node.value)
        if isinstance(node, cst.Name):
            if node.value in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.value]
            return self._bound(node.value, line, depth)
        if m.matches(node, m.Attribute(value=m.Name(), attr=m.Name())) and not m.matches(
            node, m.Attribute(value=m.Name("self"))
        ):
            return self._option(node.attr.value)  # type: ignore[attr-defined]
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            inner = self.value(node.expression, line, depth + 1)
            return UNKNOWN if inner is UNKNOWN else not inner
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            # `ROOT / "yolov5s.pt"`: a path ending in the literal
            right = self.value(node.right, line, depth + 1)
            return f"/{right}" if isinstance(right, str) else UNKNOWN
        if isinstance(node, cst.Call):
            return self._call(node, line, depth)
        return UNKNOWN

    def _call(self, node: cst.Call, line: int, depth: int) -> Any:
        func = node.func
        if isinstance(func, cst.Name) and func.value in CONVERSIONS and len(node.args) == 1:
            inner = self.value(node.args[0].value, line, depth + 1)
            if inner is UNKNOWN or func.value != "bool":
                return inner
            return bool(inner)
        if isinstance(func, cst.Attribute) and func.attr.value in STRING_METHODS:
            receiver = self.value(func.value, line, depth + 1)
            args = [self.value(a.value, line, depth + 1) for a in node.args]
            if (
                not isinstance(receiver, str)
                or not args
                or not all(isinstance(a, str) for a in args)
            ):
                return UNKNOWN
            return getattr(receiver, func.attr.value)(*args)
        return UNKNOWN

    def _bound(self, name: str, line: int, depth: int) -> Any:
        """The value every binding of `name` before `line` in the scope gives."""
        src = self.index.source
        found = [
            a
            for a in self.index.assignments_in(name, self.scope)
            if src.line(a.statement) < line and a.position is None
        ]
        values = {repr(self.value(a.value, src.line(a.statement), depth + 1)) for a in found}
        if len(values) != 1 or repr(UNKNOWN) in values:
            return UNKNOWN
        return self.value(found[-1].value, src.line(found[-1].statement), depth + 1)

    def _option(self, dest: str) -> Any:
        found = add_argument_of(self.index, dest)
        if found is None:
            return UNKNOWN
        flag, keywords = found
        if "action" in keywords or "default" not in keywords:
            return UNKNOWN
        value = self.value(keywords["default"], 0, 5)
        if value is not UNKNOWN and flag not in self.flags:
            self.flags.append(flag)
        return value
