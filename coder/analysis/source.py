"""Parsing a script and the small amount of metadata analysis needs.

Only positions and parent links are resolved (both cheap); scope analysis is
run once, at verification, on the rewritten file (see `verify.py`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from neural_coder.errors import ParseError


@dataclass
class Source:
    path: Path
    text: str
    module: cst.Module
    positions: dict[cst.CSTNode, object] = field(repr=False)
    parents: dict[cst.CSTNode, cst.CSTNode] = field(repr=False)

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line  # type: ignore[attr-defined]

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()

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

    def where(self, node: cst.CSTNode) -> str:
        return f"{self.path}:{self.line(node)}"


def parse_source(path: Path, text: str) -> Source:
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        # CPython's parser places the error better than libcst's; use its words when it agrees.
        try:
            ast.parse(text, filename=str(path))
            line, column, message = error.raw_line, error.raw_column + 1, error.message
        except SyntaxError as python_error:
            line, column, message = python_error.lineno, python_error.offset, python_error.msg
        raise ParseError(
            message.strip() or "invalid syntax",
            path=path,
            line=line,
            column=column,
            hint="the file was left untouched; fix the syntax error and run again",
        ) from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = dict(wrapper.resolve(PositionProvider))
    parents = dict(wrapper.resolve(ParentNodeProvider))
    return Source(path=path, text=text, module=module, positions=positions, parents=parents)
