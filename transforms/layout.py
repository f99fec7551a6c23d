"""What the positions pass (`positions.py`) learns about a parsed module besides
positions: every node in source order, each subtree as a contiguous run of that list,
and the tokens each node was written from.

Analysis asks for the nodes below a node (`findall`, the returns of a function) and
for the code of a node many times; a walk or a codegen for each answer costs more than
the whole pass. The layouts of the last few parsed modules are kept, so that
`iter_nodes` and `code_of` answer for any of their nodes with a slice (libcst nodes are
immutable: a node's subtree and code never change, whatever tree holds it later).
"""

from __future__ import annotations

import threading

import libcst as cst


class Layout:
    """`nodes`: pre-order (the order libcst visits them, except that a few whitespace
    nodes come where the code has them); `index`: node -> its place in `nodes`;
    `extents[i]`: one past the last node of the subtree of `nodes[i]`, and where that
    node's code is in `tokens` (first token, one past the last); `indents[i]`: for a
    statement or block (`REUSABLE`), the indentation it was written at."""

    __slots__ = ("nodes", "index", "extents", "tokens", "indents")

    def __init__(
        self,
        nodes: list[cst.CSTNode],
        index: dict[cst.CSTNode, int],
        extents: dict[int, tuple[int, int, int]],
        tokens: list[str],
        indents: dict[int, str],
    ) -> None:
        self.nodes, self.index, self.extents, self.tokens = nodes, index, extents, tokens
        self.indents = indents

    def end(self, i: int) -> int:
        return self.extents[i][0]

    def written_tokens(self, i: int) -> list[str] | None:
        """The tokens node `i` was written as, or None where they are not all there: a
        trailing newline the module dropped at the end of the file."""
        _, first, end = self.extents[i]
        if end > len(self.tokens):
            return None
        return self.tokens[first:end]

    def written(self, i: int) -> str | None:
        """The code node `i` was written as (None as for `written_tokens`)."""
        tokens = self.written_tokens(i)
        return None if tokens is None else "".join(tokens)


# the nodes whose code depends only on the indentation they are written at: statements and
# blocks (`written.py` copies their text into an edited module)
REUSABLE = frozenset(
    {
        cst.SimpleStatementLine,
        cst.If,
        cst.Try,
        cst.TryStar,
        cst.FunctionDef,
        cst.ClassDef,
        cst.With,
        cst.For,
        cst.While,
        cst.Match,
        cst.IndentedBlock,
    }
)

# newest first; a tuple replaced whole, so that readers in other threads see one or the other
_KEPT = 8
_layouts: tuple[Layout, ...] = ()
_lock = threading.Lock()


def remember(layout: Layout) -> None:
    global _layouts
    with _lock:
        _layouts = (layout, *_layouts[: _KEPT - 1])


def layout_of(node: cst.CSTNode) -> tuple[Layout, int] | None:
    """The kept layout that holds `node`, and the node's place in it."""
    for layout in _layouts:
        i = layout.index.get(node)
        if i is not None:
            return layout, i
    return None


def nodes_below(node: cst.CSTNode) -> list[cst.CSTNode] | None:
    """`node` and every node below it, in pre-order; None for a node of no kept layout."""
    found = layout_of(node)
    if found is None:
        return None
    layout, i = found
    return layout.nodes[i : layout.extents[i][0]]


def code_of(node: cst.CSTNode) -> str | None:
    """`module.code_for_node(node)` where that is the text the node was parsed from: a node
    written on one line (a node spanning lines is written with the indentation of its
    block, which `code_for_node` leaves out). None otherwise, or for a node of no kept layout."""
    found = layout_of(node)
    if found is None:
        return None
    code = found[0].written(found[1])
    if code is None or "\n" in code or "\r" in code:
        return None
    return code
