"""Walking up a parsed module: lines, parents, the statement and function around a node.

One mixin for every analysis that holds libcst's parent links and positions
(`ParentNodeProvider`, `PositionProvider`, each resolved once per module): the
coder's `Source` and the 1.x migration's `Analysis`. It lives in `transforms`
because `coder` imports `transforms`, never the reverse.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping

import libcst as cst
from libcst.metadata import CodeRange

from .layout import Layout, layout_of, nodes_below


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


class _FieldOrder(cst.CSTVisitor):
    """Records the fields libcst visits of one node, in its order, without descending."""

    def __init__(self) -> None:
        self.fields: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return False

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.fields.append(attribute)


# per node type: the fields its visit takes, and the other fields (some nodes visit a
# field only when it is set, `FormattedStringExpression.format_spec`: learned apart)
_CHILD_FIELDS: dict[type[cst.CSTNode], tuple[tuple[str, ...], tuple[str, ...]]] = {}
_CONDITIONAL: dict[tuple[type[cst.CSTNode], tuple[str, ...]], tuple[str, ...]] = {}


def _learn(node: cst.CSTNode) -> tuple[str, ...]:
    recorder = _FieldOrder()
    node._visit_and_replace_children(recorder)
    return tuple(dict.fromkeys(recorder.fields))


def _holds_nodes(value: object) -> bool:
    return isinstance(value, cst.CSTNode) or (
        type(value) in (tuple, list) and any(isinstance(v, cst.CSTNode) for v in value)  # type: ignore[attr-defined]
    )


def _child_fields(node: cst.CSTNode) -> tuple[str, ...]:
    """The fields holding a node's children, in the order libcst's visit takes them
    (learned once per node type, by letting libcst visit one node of it one level deep)."""
    kind = type(node)
    entry = _CHILD_FIELDS.get(kind)
    if entry is None:
        order = _learn(node)
        others = tuple(
            f.name
            for f in dataclasses.fields(node)
            if f.name not in order
            and not isinstance(getattr(node, f.name), str)  # text: never a node
        )
        entry = _CHILD_FIELDS[kind] = (order, others)
    order, others = entry
    if others:
        present = tuple(f for f in others if _holds_nodes(getattr(node, f)))
        if present:
            key = (kind, present)
            order = _CONDITIONAL.get(key) or _CONDITIONAL.setdefault(key, _learn(node))
    return order


_IS_NODE: dict[type, bool] = {}


def _children(node: cst.CSTNode) -> list[cst.CSTNode]:
    # (libcst's node classes are ABCs: a type lookup is much cheaper than isinstance)
    out: list[cst.CSTNode] = []
    for name in _child_fields(node):
        value = getattr(node, name)
        kind = type(value)
        if kind is tuple or kind is list:
            for child in value:
                is_node = _IS_NODE.get(type(child))
                if is_node is None:
                    is_node = _IS_NODE[type(child)] = isinstance(child, cst.CSTNode)
                if is_node:
                    out.append(child)
            continue
        is_node = _IS_NODE.get(kind)
        if is_node is None:
            is_node = _IS_NODE[kind] = isinstance(value, cst.CSTNode)
        if is_node:
            out.append(value)
    return out


def walk(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """`node.visit(visitor)` for a visitor (one that changes nothing): the same calls in
    the same order, without libcst's rebuilding of every node on the way (about 4x
    faster); over the module's layout, for a node of a module parsed lately, with only
    the `visit_`/`leave_` methods the visitor has called (about 20x faster)."""
    found = layout_of(node)
    if found is not None and _plain_visitor(type(visitor)):
        _walk_layout(found[0], found[1], visitor)
    else:
        _walk(node, visitor)


def _walk(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    if visitor.on_visit(node):
        for child in _children(node):
            _walk(child, visitor)
    visitor.on_leave(node)


_Handlers = tuple[Callable[[cst.CSTNode], object] | None, Callable[[cst.CSTNode], object] | None]


def _walk_layout(layout: Layout, first: int, visitor: cst.CSTVisitor) -> None:
    """`_walk` over the subtree of `layout.nodes[first]`: the nodes in order, a skipped
    subtree jumped over, each `leave_` called when the walk passes the node's subtree."""
    nodes, extents = layout.nodes, layout.extents
    handlers: dict[type[cst.CSTNode], _Handlers] = {}
    open_ends: list[int] = []  # the subtrees being walked whose node has a leave_, innermost last
    open_leaves: list[tuple[Callable[[cst.CSTNode], object], cst.CSTNode]] = []
    j, stop = first, extents[first][0]
    closing = stop  # where the innermost open subtree ends
    while j < stop:
        while j >= closing:
            open_ends.pop()
            leave, left = open_leaves.pop()
            leave(left)
            closing = open_ends[-1] if open_ends else stop
        node = nodes[j]
        kind = type(node)
        found = handlers.get(kind)
        if found is None:
            name = kind.__name__
            found = handlers[kind] = (
                getattr(visitor, f"visit_{name}", None),
                getattr(visitor, f"leave_{name}", None),
            )
        visit, leave = found
        if visit is None:
            if leave is None:
                j += 1
                continue
            descend = True
        else:
            descend = visit(node) is not False
        after = j + 1 if descend else extents[j][0]
        if leave is not None:
            closing = extents[j][0] if descend else j + 1
            open_ends.append(closing)
            open_leaves.append((leave, node))
        j = after
    while open_leaves:
        leave, left = open_leaves.pop()
        leave(left)


def nodes_within(node: cst.CSTNode, barriers: tuple[type[cst.CSTNode], ...]) -> list[cst.CSTNode]:
    """`node` and the nodes below it, in pre-order, leaving out what is below a node of a
    `barriers` type (`node` itself excepted): a function's own statements, without those of
    the functions it defines."""
    found = layout_of(node)
    if found is None:
        kept: list[cst.CSTNode] = []
        pending = [node]
        while pending:
            current = pending.pop()
            kept.append(current)
            if current is node or type(current) not in barriers:
                children = _children(current)
                children.reverse()
                pending += children
        return kept
    layout, j = found
    nodes, extents = layout.nodes, layout.extents
    kept = [node]
    j, stop = j + 1, extents[j][0]
    while j < stop:
        current = nodes[j]
        kept.append(current)
        j = extents[j][0] if type(current) in barriers else j + 1
    return kept


@functools.cache
def _plain_visitor(kind: type[cst.CSTVisitor]) -> bool:
    """A visitor whose calls `_walk_layout` makes: libcst's own dispatch (`on_visit` and
    the others not overridden), and no `visit_<Node>_<field>` methods."""
    base = cst.CSTVisitor
    if any(
        getattr(kind, hook) is not getattr(base, hook)
        for hook in ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")
    ):
        return False
    own = (c for c in kind.__mro__ if not issubclass(base, c))  # (libcst's are all no-ops)
    for name in (n for c in own for n in vars(c)):
        prefix, _, rest = name.partition("_")
        if prefix in ("visit", "leave") and rest and not isinstance(getattr(cst, rest, None), type):
            return False
    return True


def iter_nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    """`node` and every node below it, in the order libcst visits them (a slice of the
    module's layout for a node of a module parsed lately)."""
    found = nodes_below(node)
    if found is not None:
        return found
    found = []
    pending = [node]
    while pending:
        current = pending.pop()
        found.append(current)
        children = _children(current)
        children.reverse()
        pending += children
    return found


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
