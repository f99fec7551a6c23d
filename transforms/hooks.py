"""Apply a plan's edits to a module in one libcst pass.

Every inserted statement carries the `# neural-coder` marker, so that a second
run recognises its own code and `revert` could remove it. Imports go through
libcst's `AddImportsVisitor`, which adds each one once, in the import block.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
from .lazy import lazy_module
from .snippets import MARKER, WRAPPED_MARKER, format_code, is_one_line_canonical

# libcst.codemod imports libcst.matchers (as long to import as libcst): only when imports are added
if TYPE_CHECKING:
    from libcst import codemod
    from libcst.codemod import visitors
else:
    codemod = lazy_module("libcst.codemod")
    visitors = lazy_module("libcst.codemod.visitors")

_TIGHT_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)
CONTROL_TRANSFER = (cst.Continue, cst.Break, cst.Return, cst.Raise)


def parse_statements(code: str) -> list[cst.BaseStatement]:
    statements = list(cst.parse_module(code).body)
    marked: list[cst.BaseStatement] = []
    for statement in statements:
        if isinstance(statement, cst.SimpleStatementLine):
            statement = statement.with_changes(
                trailing_whitespace=cst.TrailingWhitespace(
                    whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(MARKER)
                )
            )
        marked.append(statement)
    return marked


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


@functools.cache
def _add_imports_visitor() -> type[cst.CSTTransformer]:
    """The visitor class below, made on first use (libcst.codemod is slow to import)."""
    from libcst.codemod.visitors._add_imports import _GatherTopImportsBeforeStatements

    class _AddImports(visitors.AddImportsVisitor):
        """libcst's `AddImportsVisitor`, which reads and changes only the module's top-level
        import lines, walking those lines alone (its own walk of every node with its matcher
        machinery costs half a libcst round trip of the file)."""

        def visit_Module(self, node: cst.Module) -> None:
            # AddImportsVisitor.visit_Module, with the gatherer's work (all in its leave_Module,
            # from the module's body) done without walking the module first
            gatherer = _GatherTopImportsBeforeStatements(self.context)
            gatherer.leave_Module(node)
            self.all_imports = gatherer.all_imports
            self.module_imports = self.module_imports - gatherer.module_imports
            for module, alias in gatherer.module_aliases.items():
                if module in self.module_aliases and self.module_aliases[module] == alias:
                    del self.module_aliases[module]
            for module, aliases in gatherer.alias_mapping.items():
                for obj, alias in aliases:
                    if module in self.alias_mapping and (obj, alias) in self.alias_mapping[module]:
                        self.alias_mapping[module].remove((obj, alias))
                        if len(self.alias_mapping[module]) == 0:
                            del self.alias_mapping[module]
            for module, imports in gatherer.object_mapping.items():
                if module not in self.module_mapping:
                    continue
                elif "*" in imports:
                    del self.module_mapping[module]
                else:
                    self.module_mapping[module] = self.module_mapping[module] - imports
                    if not self.module_mapping[module]:
                        del self.module_mapping[module]

        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, cst.Module | cst.SimpleStatementLine):
                return super().on_visit(node)
            if isinstance(node, cst.ImportFrom):
                super().on_visit(node)  # leave_ImportFrom reads the node, not its children
            return False

    return _AddImports


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
        context = codemod.CodemodContext()
        for imp in transformer.imports:
            if imp.name is None:
                visitors.AddImportsVisitor.add_needed_import(context, imp.module)
            else:
                visitors.AddImportsVisitor.add_needed_import(context, imp.module, imp.name)
        result = add_imports(result, context)
    return result


def add_imports(module: cst.Module, context: codemod.CodemodContext) -> cst.Module:
    """What `AddImportsVisitor(context)` does to the module, run on its head alone: the
    statements up to the end of its first import block and the one after it (all that
    visitor reads or changes), not the whole file."""
    from libcst.codemod.visitors._add_imports import _skip_first

    start = 1 if _skip_first(module) else 0
    end = start
    while end < len(module.body) and _is_import_line(module.body[end]):
        end += 1
    head = module.with_changes(body=module.body[: end + 1])
    done = list(head.visit(_add_imports_visitor()(context)).body)
    if start < end < len(module.body) and done[-1] is not module.body[end]:
        # libcst puts a blank line above the code after the imports; a script whose import
        # block had none keeps its layout (and revert can give it back byte for byte)
        if not module.body[end].leading_lines:
            done[-1] = done[-1].with_changes(leading_lines=[])
    return module.with_changes(body=(*done, *module.body[end + 1 :]))


def _is_import_line(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(s, cst.Import | cst.ImportFrom) for s in statement.body[:1]
    )
