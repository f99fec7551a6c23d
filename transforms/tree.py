"""Walking up a parsed module: lines, parents, the statement and function around a node.

One mixin for every analysis that holds libcst's parent links and positions
(`ParentNodeProvider`, `PositionProvider`, each resolved once per module): the
coder's `Source` and the 1.x migration's `Analysis`. It lives in `transforms`
because `coder` imports `transforms`, never the reverse.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import libcst as cst
from libcst.metadata import CodeRange


class Tree:
    """Needs `parents` (node -> parent) and `positions` (node -> CodeRange) attributes."""

    parents: Mapping[cst.CSTNode, cst.CSTNode]
    positions: Mapping[cst.CSTNode, CodeRange]

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def statement_of(self, node: cst.CSTNode) -> cst.BaseStatement:
        """The statement (a line or a compound statement) that holds `node`."""
        if isinstance(node, cst.BaseStatement):
            return node
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.BaseStatement):
                return ancestor
        raise ValueError("node is not inside a statement")

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        """The innermost `def` around `node`, or None."""
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.FunctionDef):
                return ancestor
        return None


class _PinIndent(cst.CSTTransformer):
    def __init__(self, indent: str) -> None:
        self.indent = indent

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        if updated_node.indent is None:
            return updated_node.with_changes(indent=self.indent)
        return updated_node


def parse_python(text: str) -> cst.Module:
    """libcst's parse, for every file Python accepts. A form feed inside indentation (legal:
    Python resets the column at it) becomes the module's default indent, which libcst then
    refuses to parse snippets with; the blocks keep their own whitespace byte for byte and
    inserted code is indented with the same whitespace minus the form feeds."""
    module = cst.parse_module(text)
    indent = module.default_indent
    if indent.strip(" \t") == "":
        return module
    pinned = module.visit(_PinIndent(indent))
    return pinned.with_changes(default_indent=indent.replace("\x0c", "") or "    ")
