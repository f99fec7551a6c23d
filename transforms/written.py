"""The code of an edited module, with the text of the statements it shares with the
module it was made from copied instead of written again.

Edits rebuild only the nodes on the way down to what they change (`hooks.py`); every
other statement is the very node the parser made, and its code is the text it was
parsed from (`layout.py` keeps where each one is), as long as it is written at the same
indentation. Writing the module then costs the edited statements and a copy of the
rest, instead of a codegen of the whole file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import libcst as cst
from libcst._nodes.internal import CodegenState

from .layout import layout_of
from .tree import _child_fields

# parsed nodes that are not statements but hold blocks: looked into for their blocks
_HOLDERS = (cst.Else, cst.Finally, cst.ExceptHandler, cst.ExceptStarHandler, cst.MatchCase)


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity, as nodes are
class _Written(cst.CSTNode):
    """Stands for `node` while the module is written: its parsed text where the
    indentation is the one it was parsed at, else the node's own codegen."""

    node: cst.CSTNode
    tokens: list[str]  # (the module drops the last token, a line break, when the file has none)
    indent: str

    def _visit_and_replace_children(self, visitor: cst.CSTVisitor) -> _Written:
        return self

    def _codegen_impl(self, state: CodegenState, **kwargs: Any) -> None:
        if kwargs or "".join(state.indent_tokens) != self.indent:
            self.node._codegen(state, **kwargs)
        else:
            state.tokens.extend(self.tokens)


def module_code(module: cst.Module) -> str:
    """`module.code`, reusing the parsed text of the statements and blocks it shares with
    a module parsed lately."""
    return _with_written(module).code  # type: ignore[union-attr]


def _with_written(node: cst.CSTNode) -> cst.CSTNode:
    """`node` (one the edits made) with its parsed statements replaced by `_Written`."""
    changes: dict[str, object] = {}
    for name in _child_fields(node):
        value = getattr(node, name)
        if type(value) is tuple or type(value) is list:
            items = [_replaced(v) if isinstance(v, cst.CSTNode) else v for v in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[name] = items
        elif isinstance(value, cst.CSTNode):
            item = _replaced(value)
            if item is not value:
                changes[name] = item
    return node.with_changes(**changes) if changes else node


def _replaced(node: cst.CSTNode) -> cst.CSTNode:
    found = layout_of(node)
    if found is None:
        return _with_written(node)  # made by the edits
    layout, i = found
    indent = layout.indents.get(i)
    if indent is not None:
        tokens = layout.written_tokens(i)
        if tokens is not None:
            return _Written(node=node, tokens=tokens, indent=indent)
    if isinstance(node, _HOLDERS):
        return _with_written(node)
    return node
