"""Edits a plan asks for, pointing at nodes of the parsed original module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import libcst as cst

Where = Literal["before", "after", "body_start", "body_end"]


@dataclass(frozen=True)
class InsertStatements:
    """Insert `code` (one or more formatted statements) relative to `anchor`.

    `before`/`after` put them next to a statement in its block; `body_start` /
    `body_end` put them first/last in the body of a loop (`anchor` is the loop).
    """

    anchor: cst.CSTNode
    where: Where
    code: str


@dataclass(frozen=True)
class AddParameter:
    function: cst.FunctionDef
    name: str


@dataclass(frozen=True)
class AddKeywordArgument:
    call: cst.Call
    name: str
    value: str


@dataclass(frozen=True)
class ReplaceArgumentValue:
    """Give an existing argument of a call a new value (`callbacks=[...]`)."""

    arg: cst.Arg
    value: str


@dataclass(frozen=True)
class ReplaceExpression:
    """Put the expression `code` in place of `node` (a model call hoisted into its own
    statement is replaced by the name that statement assigns)."""

    node: cst.BaseExpression
    code: str


@dataclass(frozen=True)
class AddImport:
    module: str
    name: str | None = None  # None: `import module`


Edit = (
    InsertStatements
    | AddParameter
    | AddKeywordArgument
    | ReplaceArgumentValue
    | ReplaceExpression
    | AddImport
)


def target_of(edit: Edit) -> cst.CSTNode | None:
    """The node of the original module an edit changes (None for an import)."""
    if isinstance(edit, InsertStatements):
        return edit.anchor
    if isinstance(edit, AddParameter):
        return edit.function
    if isinstance(edit, AddKeywordArgument):
        return edit.call
    if isinstance(edit, ReplaceArgumentValue):
        return edit.arg
    if isinstance(edit, ReplaceExpression):
        return edit.node
    return None
