"""Parsing a script and the small amount of metadata analysis needs.

Only positions and parent links are resolved, by one light codegen pass
(`transforms/positions.py`), which also keeps the module's layout (`transforms/layout.py`:
subtrees as slices, each node's parsed text) for the walks, `code()` and the writing of
the edited file; no scope analysis: verification uses CPython's symbol table (see
`verify.py`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import CodeRange

from neural_coder.errors import ParseError
from neural_coder.transforms.layout import code_of
from neural_coder.transforms.positions import positions_and_parents, positions_of
from neural_coder.transforms.tree import Tree, parse_python


@dataclass
class Source(Tree):
    path: Path
    text: str
    module: cst.Module
    positions: Mapping[cst.CSTNode, CodeRange] = field(repr=False)
    parents: Mapping[cst.CSTNode, cst.CSTNode] = field(repr=False)

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """Every identifier the module spells (fresh names must avoid them); from the
        positions already resolved, instead of another walk of the tree."""
        return frozenset(node.value for node in self.positions if isinstance(node, cst.Name))

    @functools.cached_property
    def for_loops(self) -> list[cst.For]:
        """Every `for` statement of the module, from the positions already resolved."""
        return [node for node in self.positions if type(node) is cst.For]

    @functools.cached_property
    def _codes(self) -> dict[cst.CSTNode, str]:
        return {}

    def code(self, node: cst.CSTNode) -> str:
        # analysis asks for the same nodes' code many times, and each answer is a codegen
        found = self._codes.get(node)
        if found is None:
            written = code_of(node)  # the parsed text, where it is the node's code
            if written is None:
                written = self.module.code_for_node(node)
            found = self._codes[node] = written.strip()
        return found

    def where(self, node: cst.CSTNode) -> str:
        return f"{self.path}:{self.line(node)}"

    # A project of several files (see project.py) answers these per module.
    @property
    def parts(self) -> list[Source]:
        """The parsed files analysis sees: this one."""
        return [self]

    def module_of(self, node: cst.CSTNode) -> cst.Module:
        return self.module

    def part_of(self, node: cst.CSTNode) -> Source:
        return self

    def shown(self, path: Path) -> str:
        return str(path)

    def numbered(self, part: Source, number: int) -> int:
        """Line `number` of the file `part`, as `line()` would give it."""
        return number

    def line_text(self, node: cst.CSTNode) -> str:
        """The source line where `node` starts."""
        return self.text.split("\n")[self.line(node) - 1]  # (splitlines also splits at form feeds)

    def resolve_import(self, dotted: str, at: cst.CSTNode) -> tuple[cst.Module, str] | None:
        """The module of the project that a dotted import names, and the rest of the
        name (`engine.train_one_epoch` -> (engine's module, "train_one_epoch")); a
        single file has no modules to import from."""
        return None


def parse_source(path: Path, text: str) -> Source:
    module = parse_checked(path, text)
    found = positions_and_parents(module)
    positions, parents = found if found is not None else (positions_of(module), parents_of(module))
    return Source(path=path, text=text, module=module, positions=positions, parents=parents)


def parse_checked(path: Path, text: str) -> cst.Module:
    """The module, or a ParseError that places the syntax error as Python does."""
    try:
        module = parse_python(text)
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
    return module


def parents_of(module: cst.Module) -> dict[cst.CSTNode, cst.CSTNode]:
    """Child -> parent for every node: what ParentNodeProvider gives, read from the
    nodes' fields (libcst's `children` rebuilds each node to list them: about 8x slower;
    the language server parses the buffer on every pause in typing)."""
    parents: dict[cst.CSTNode, cst.CSTNode] = {}
    stack: list[cst.CSTNode] = [module]
    node_type = cst.CSTNode
    while stack:
        node = stack.pop()
        for name in _fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, node_type):
                parents[value] = node
                stack.append(value)
            elif type(value) is tuple or type(value) is list:
                for child in value:
                    if isinstance(child, node_type):
                        parents[child] = node
                        stack.append(child)
    return parents


@functools.cache
def _fields(node_type: type[cst.CSTNode]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(node_type))
