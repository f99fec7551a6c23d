"""Apply a plan's edits to a module in one libcst pass.

Every inserted statement carries the `# neural-coder` marker, so that a second
run recognises its own code and `revert` could remove it. Imports are added once each,
in the import block (imports.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import libcst as cst

from .edits import (
    AddImport,
    AddKeywordArgument,
    AddParameter,
    Edit,
    InsertStatements,
    ReplaceArgumentValue,
    ReplaceExpression,
    target_of,
)
from .imports import add_imports
from .snippets import MARKER, WRAPPED_MARKER, format_code, is_one_line_canonical

_TIGHT_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)
CONTROL_TRANSFER = (cst.Continue, cst.Break, cst.Return, cst.Raise)


_MARK = cst.TrailingWhitespace(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(MARKER))


def parse_statements(code: str) -> list[cst.BaseStatement]:
    """`code`'s statements, each marked as the tool's (`revert` finds them by the mark):
    a simple statement at its end, a block (the last-epoch `if epoch == ...:`) on its
    header line and on every statement inside."""
    return [_marked(statement) for statement in cst.parse_module(code).body]


def _marked(statement: cst.BaseStatement) -> cst.BaseStatement:
    if isinstance(statement, cst.SimpleStatementLine):
        return statement.with_changes(trailing_whitespace=_MARK)
    body = getattr(statement, "body", None)
    if isinstance(body, cst.IndentedBlock) and not getattr(statement, "orelse", None):
        inner = [_marked(s) for s in body.body]
        return statement.with_changes(body=body.with_changes(header=_MARK, body=inner))
    return statement


class ApplyEdits(cst.CSTTransformer):
    """All the edits in one pass. With `on_path` (the nodes the edits change and their
    ancestors), only those are visited: the rest of the tree is kept as it is, node for
    node, instead of being rebuilt."""

    def __init__(
        self,
        edits: Iterable[Edit],
        line_length: int | None = None,
        on_path: set[cst.CSTNode] | None = None,
    ) -> None:
        super().__init__()
        self.on_path = on_path
        self.line_length = line_length
        self.indents: list[str] = []  # the indentation of each enclosing block
        self.call_edited = False  # a call in the current simple statement gained arguments
        self.inserts: dict[str, dict[cst.CSTNode, list[cst.BaseStatement]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.params: dict[cst.FunctionDef, list[str]] = defaultdict(list)
        self.kwargs: dict[cst.Call, list[tuple[str, str]]] = defaultdict(list)
        self.values: dict[cst.Arg, str] = {}
        self.replacements: dict[cst.CSTNode, str] = {}
        self.imports: list[AddImport] = []
        for edit in edits:
            if isinstance(edit, InsertStatements):
                self.inserts[edit.where][edit.anchor].extend(parse_statements(edit.code))
            elif isinstance(edit, AddParameter):
                self.params[edit.function].append(edit.name)
            elif isinstance(edit, AddKeywordArgument):
                self.kwargs[edit.call].append((edit.name, edit.value))
            elif isinstance(edit, ReplaceArgumentValue):
                self.values[edit.arg] = edit.value
            elif isinstance(edit, ReplaceExpression):
                self.replacements[edit.node] = edit.code
            else:
                self.imports.append(edit)
        self.pending = (
            sum(len(v) for v in self.inserts.values())
            + len(self.params)
            + len(self.kwargs)
            + len(self.values)
            + len(self.replacements)
        )

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.on_path is not None and node not in self.on_path:
            return False
        return super().on_visit(node)

    def on_leave(
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNode]:
        if self.on_path is not None and original_node not in self.on_path:
            return updated_node  # not visited: no leave_ method may see it
        code = self.replacements.pop(original_node, None)
        if code is None:
            return super().on_leave(original_node, updated_node)
        self.pending -= 1
        return cst.parse_expression(code)

    # -- statements next to statements ----------------------------------------------------
    def _splice(
        self, original: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement]
    ) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for before_node, after_node in zip(original, updated, strict=True):
            out.extend(self._take("before", before_node))
            out.append(after_node)
            out.extend(self._take("after", before_node))
        return out

    def _take(self, where: str, anchor: cst.CSTNode) -> list[cst.BaseStatement]:
        found = self.inserts[where].pop(anchor, [])
        if found:
            self.pending -= 1
        return found

    def visit_Module(self, node: cst.Module) -> None:
        self.default_indent = node.default_indent

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.indents.append(node.indent if node.indent is not None else self.default_indent)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        self.indents.pop()
        return updated_node.with_changes(body=self._splice(original_node.body, updated_node.body))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        """A statement whose call gained arguments is formatted as inserted snippets are,
        when it no longer fits the file's line length."""
        if not self.call_edited:
            return updated_node
        self.call_edited = False
        indent = len("".join(self.indents).expandtabs())
        code = cst.Module(body=[updated_node.with_changes(leading_lines=[])]).code
        if self.line_length is None or all(
            indent + len(line) <= self.line_length for line in code.splitlines()
        ):
            return updated_node
        before = cst.Module(body=[original_node.with_changes(leading_lines=[])]).code
        if original_node.trailing_whitespace.comment or not is_one_line_canonical(before):
            return updated_node  # a layout of the user's own: revert could not restore it
        formatted = cst.parse_module(format_code(code, self.line_length - indent)).body
        if len(formatted) != 1 or not isinstance(formatted[0], cst.SimpleStatementLine):
            return updated_node
        return formatted[0].with_changes(
            leading_lines=updated_node.leading_lines,
            trailing_whitespace=cst.TrailingWhitespace(
                whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(WRAPPED_MARKER)
            ),
        )

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return updated_node.with_changes(body=self._splice(original_node.body, updated_node.body))

    # -- statements inside loop bodies --------------------------------------------------------
    def _loop(
        self, original: cst.For | cst.While, updated: cst.For | cst.While
    ) -> cst.For | cst.While:
        start = self._take("body_start", original)
        end = self._take("body_end", original)
        if not (start or end):
            return updated
        body = updated.body
        if not isinstance(body, cst.IndentedBlock):
            raise ValueError("loop body on the same line as the loop header")
        statements = list(body.body)
        tail: list[cst.BaseStatement] = []
        last = statements[-1] if statements else None
        if isinstance(last, cst.SimpleStatementLine) and isinstance(
            last.body[-1], CONTROL_TRANSFER
        ):
            tail = [statements.pop()]
        return updated.with_changes(body=body.with_changes(body=[*start, *statements, *end, *tail]))

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        return self._loop(original_node, updated_node)  # type: ignore[return-value]

    def leave_While(self, original_node: cst.While, updated_node: cst.While) -> cst.While:
        return self._loop(original_node, updated_node)  # type: ignore[return-value]

    # -- signatures and call sites ----------------------------------------------------------------
    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        names = self.params.pop(original_node, None)
        if not names:
            return updated_node
        self.pending -= 1
        params = updated_node.params
        new = [cst.Param(name=cst.Name(n)) for n in names]
        if (
            params.star_arg is not cst.MaybeSentinel.DEFAULT
            or params.star_kwarg is not None
            or params.kwonly_params
        ):
            return updated_node.with_changes(
                params=params.with_changes(kwonly_params=[*params.kwonly_params, *new])
            )
        if any(p.default is not None for p in params.params):
            new = [p.with_changes(default=cst.Name("None"), equal=_TIGHT_EQUAL) for p in new]
        existing = list(params.params)
        if _one_per_line(existing):
            existing, new = _one_more_per_line(existing, new)
            return updated_node.with_changes(params=params.with_changes(params=[*existing, *new]))
        return updated_node.with_changes(
            params=params.with_changes(params=[*_comma_last(existing), *new])
        )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        extra = self.kwargs.pop(original_node, None)
        if not extra:
            return updated_node
        self.pending -= 1
        self.call_edited = True
        args = [
            cst.Arg(keyword=cst.Name(name), value=cst.parse_expression(value), equal=_TIGHT_EQUAL)
            for name, value in extra
        ]
        existing = list(updated_node.args)
        if _one_per_line(existing):
            existing, args = _one_more_per_line(existing, args)
            return updated_node.with_changes(args=[*existing, *args])
        if existing and isinstance(existing[-1].whitespace_after_arg, cst.ParenthesizedWhitespace):
            # `(\n    a, b\n)`: the line break before ")" moves after the new argument
            closing_space = existing[-1].whitespace_after_arg
            existing[-1] = existing[-1].with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
            args[-1] = args[-1].with_changes(whitespace_after_arg=closing_space)
        return updated_node.with_changes(args=[*_comma_last(existing), *args])

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        value = self.values.pop(original_node, None)
        if value is None:
            return updated_node
        self.pending -= 1
        return updated_node.with_changes(value=cst.parse_expression(value))


def _one_more_per_line(existing: list[Any], added: list[Any]) -> tuple[list[Any], list[Any]]:
    """Keep a one-per-line layout (black's "magic trailing comma"): the added items go on
    lines of their own, and the last one takes the comma before ")"."""
    between, closing = existing[-2].comma, existing[-1].comma
    existing = [*existing[:-1], existing[-1].with_changes(comma=between)]
    added = [a.with_changes(comma=between) for a in added[:-1]] + [
        added[-1].with_changes(comma=closing)
    ]
    return existing, added


def _one_per_line(args: Sequence[cst.Arg] | Sequence[cst.Param]) -> bool:
    """Arguments (or parameters) laid out one per line with a trailing comma."""
    return len(args) >= 2 and all(
        isinstance(a.comma, cst.Comma)
        and isinstance(a.comma.whitespace_after, cst.ParenthesizedWhitespace)
        for a in args
    )


def _comma_last(items: Sequence[cst.Param] | Sequence[cst.Arg]) -> list:  # type: ignore[type-arg]
    """Make sure the existing last item is followed by a comma before appending."""
    out = list(items)
    if out and out[-1].comma is cst.MaybeSentinel.DEFAULT:
        out[-1] = out[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return out


def on_path_of(
    edits: Iterable[Edit], parents: Mapping[cst.CSTNode, cst.CSTNode]
) -> set[cst.CSTNode]:
    """The nodes the edits change and every ancestor of them."""
    path: set[cst.CSTNode] = set()
    for edit in edits:
        node = target_of(edit)
        while node is not None and node not in path:
            path.add(node)
            node = parents.get(node)
    return path


def apply_edits(
    module: cst.Module,
    edits: Sequence[Edit],
    line_length: int | None = None,
    parents: Mapping[cst.CSTNode, cst.CSTNode] | None = None,
) -> cst.Module:
    """The module with `edits` applied; with `line_length`, an edited call that no longer
    fits is formatted to it (the inserted snippets already are). With `parents` (child ->
    parent for the module's nodes), only the paths down to the edited nodes are walked."""
    on_path = None if parents is None else on_path_of(edits, parents) | {module}
    transformer = ApplyEdits(edits, line_length, on_path)
    result = module.visit(transformer)
    if transformer.pending:
        raise ValueError(f"{transformer.pending} edit(s) found no place in the file")
    if transformer.imports:
        result = add_imports(result, [(imp.module, imp.name) for imp in transformer.imports])
    return result
