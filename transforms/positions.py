"""Line and column of every node: what libcst's `PositionProvider` computes, in about
half its time.

The provider's own codegen pass is kept (its rules for which whitespace a node's range
covers are libcst's); only the bookkeeping is lighter: plain tuples instead of a
`CodeRange` per node (made when one is asked for), and a small context manager object
instead of a generator-based one for each syntactic position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from .layout import REUSABLE, Layout, remember

Span = tuple[tuple[int, int], tuple[int, int]]


class Positions(Mapping[cst.CSTNode, CodeRange]):
    """node -> CodeRange, built from the spans on first access."""

    def __init__(self, spans: dict[cst.CSTNode, Span]) -> None:
        self._spans = spans
        self._ranges: dict[cst.CSTNode, CodeRange] = {}

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        found = self._ranges.get(node)
        if found is None:
            (start_line, start_column), (end_line, end_column) = self._spans[node]
            found = self._ranges[node] = CodeRange(
                CodePosition(start_line, start_column), CodePosition(end_line, end_column)
            )
        return found

    def __contains__(self, node: object) -> bool:
        return node in self._spans

    def __iter__(self) -> Iterator[cst.CSTNode]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)

    @classmethod
    def joined(
        cls, parts: Iterable[Mapping[cst.CSTNode, CodeRange]]
    ) -> Mapping[cst.CSTNode, CodeRange]:
        """The positions of several modules in one mapping (each node is in one module)."""
        parts = list(parts)
        if all(isinstance(p, Positions) for p in parts):
            return cls({n: s for p in parts for n, s in p._spans.items()})  # type: ignore[attr-defined]
        return {n: r for p in parts for n, r in p.items()}


class _Syntactic:
    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(
        self,
        state: _SpanState,
        node: cst.CSTNode,
        start_node: cst.CSTNode | None,
        end_node: cst.CSTNode | None,
    ) -> None:
        self.state, self.node, self.start_node, self.end_node = state, node, start_node, end_node

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exc: object) -> None:
        state = self.state
        spans = state.provider._computed
        start = spans[self.start_node][0] if self.start_node is not None else self.start
        end = spans[self.end_node][1] if self.end_node is not None else (state.line, state.column)
        spans[self.node] = (start, end)


class _SpanState(PositionProvidingCodegenState):
    # open_nodes: the nodes being written, innermost last
    __slots__ = ("open_nodes", "parents", "nodes", "index", "extents", "indents")

    def _update_position(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            super()._update_position(value)
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        nodes = self.nodes
        i = len(nodes)
        self._stack.append((self.line, self.column, i, len(self.tokens)))  # type: ignore[arg-type]
        open_nodes = self.open_nodes
        if open_nodes:
            self.parents[node] = open_nodes[-1]
            kind = type(node)
            if kind in REUSABLE and not (kind is cst.If and type(open_nodes[-1]) is cst.If):
                # (an `elif` is written otherwise than an `if`)
                self.indents[i] = "".join(self.indent_tokens)
        open_nodes.append(node)
        self.index[node] = i
        nodes.append(node)

    def after_codegen(self, node: cst.CSTNode) -> None:
        self.open_nodes.pop()
        line, column, i, first_token = self._stack.pop()  # type: ignore[misc]
        self.extents[i] = (len(self.nodes), first_token, len(self.tokens))
        spans = self.provider._computed
        if node not in spans:  # a syntactic position recorded inside wins
            spans[node] = ((line, column), (self.line, self.column))

    def record_syntactic_position(  # type: ignore[override]
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> _Syntactic:
        return _Syntactic(self, node, start_node, end_node)


def positions_and_parents(
    module: cst.Module,
) -> tuple[Mapping[cst.CSTNode, CodeRange], dict[cst.CSTNode, cst.CSTNode]] | None:
    """What `PositionProvider` gives, and child -> parent for every node (the node whose
    code was being written when the child's began), from one codegen pass; None from a
    libcst whose providers are laid out otherwise. The module's layout (`layout.py`) is
    kept from the same pass."""
    provider = PositionProvider()
    try:
        state = _SpanState(
            default_indent=module.default_indent,
            default_newline=module.default_newline,
            provider=provider,
        )
        state.open_nodes, state.parents = [], {}
        state.nodes, state.index, state.extents, state.indents = [], {}, {}, {}
        module._codegen(state)
    except (AttributeError, TypeError):
        return None
    remember(Layout(state.nodes, state.index, state.extents, state.tokens, state.indents))
    return Positions(provider._computed), state.parents


def positions_of(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    """What `MetadataWrapper(module).resolve(PositionProvider)` gives."""
    found = positions_and_parents(module)
    if found is None:
        return dict(MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider))
    return found[0]
