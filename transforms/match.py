"""The part of `libcst.matchers` that neural-coder uses, without its import cost.

`libcst.matchers` defines a generated dataclass for each of libcst's ~250 node types; its
module body alone takes about as long to import as libcst itself. Here a matcher is built
on demand from the node class of the same name (`Name("x")`, `Call(func=..., args=[...])`),
and matches with libcst's semantics for what we use: exact node class, fields compared
recursively (str and bool by value, None by identity), sequences element by element with
`ZeroOrMore()` wildcards, `OneOf` (or `a | b`) and `MatchIfTrue`. Metadata matchers,
captures and the other wildcards are not provided. `tests/coder/test_match.py` checks it
against `libcst.matchers` on the patterns the analysis uses.

Use it as `from neural_coder.transforms import match as m`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import libcst as cst


class _Matcher:
    def __or__(self, other: object) -> OneOf:
        return OneOf(self, other)

    def matches(self, value: object) -> bool:
        raise NotImplementedError


class OneOf(_Matcher):
    def __init__(self, *options: object) -> None:
        self.options = options

    def matches(self, value: object) -> bool:
        return any(_value_matches(value, option) for option in self.options)

    def __or__(self, other: object) -> OneOf:
        return OneOf(*self.options, other)


class MatchIfTrue(_Matcher):
    def __init__(self, func: Callable[[Any], bool]) -> None:
        self.func = func

    def matches(self, value: object) -> bool:
        return bool(self.func(value))


class ZeroOrMore:
    """In a sequence: any number of elements, each matching `matcher` (anything by default)."""

    def __init__(self, matcher: object = None) -> None:
        self.matcher = matcher


class NodeMatcher(_Matcher):
    """Matches a node of exactly `node_class` whose given fields match."""

    def __init__(
        self, node_class: type[cst.CSTNode], args: tuple[object, ...], fields: dict
    ) -> None:
        names = _field_names(node_class)
        if len(args) > len(names):
            raise TypeError(f"{node_class.__name__} takes at most {len(names)} positional fields")
        given = dict(zip(names, args, strict=False))
        for name, value in fields.items():
            if name not in names or name in given:
                raise TypeError(f"{node_class.__name__}: bad or repeated field {name!r}")
            given[name] = value
        self.node_class = node_class
        self.fields = tuple(given.items())

    def matches(self, value: object) -> bool:
        return type(value) is self.node_class and all(
            _value_matches(getattr(value, name), wanted) for name, wanted in self.fields
        )

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={wanted!r}" for name, wanted in self.fields)
        return f"m.{self.node_class.__name__}({inner})"


def _value_matches(value: object, wanted: object) -> bool:
    if isinstance(wanted, _Matcher):
        return wanted.matches(value)
    if wanted is None or isinstance(wanted, bool):
        return value is wanted
    if isinstance(wanted, str):
        return value == wanted
    if isinstance(wanted, Sequence):
        return isinstance(value, Sequence) and _sequence_matches(value, wanted)
    raise TypeError(f"cannot match against {wanted!r}")


def _sequence_matches(values: Sequence[object], wanted: Sequence[object]) -> bool:
    if not wanted:
        return not values
    first, rest = wanted[0], wanted[1:]
    if isinstance(first, ZeroOrMore):
        for taken in range(len(values) + 1):
            if (
                taken
                and first.matcher is not None
                and not _value_matches(values[taken - 1], first.matcher)
            ):
                return False
            if _sequence_matches(values[taken:], rest):
                return True
        return False
    return bool(values) and _value_matches(values[0], first) and _sequence_matches(values[1:], rest)


@cache
def _field_names(node_class: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(node_class) if not f.name.startswith("_"))


@cache
def _node_matcher(name: str) -> Callable[..., NodeMatcher]:
    node_class = getattr(cst, name, None)
    if not (isinstance(node_class, type) and issubclass(node_class, cst.CSTNode)):
        raise AttributeError(f"libcst has no node class {name!r}")

    def make(*args: object, **fields: object) -> NodeMatcher:
        return NodeMatcher(node_class, args, fields)

    make.__name__ = name
    return make


def __getattr__(name: str) -> Callable[..., NodeMatcher]:
    if not name[:1].isupper():
        raise AttributeError(name)
    return _node_matcher(name)


def matches(node: object, matcher: _Matcher) -> bool:
    """Whether `node` matches; False for a sentinel or None, as in libcst."""
    return isinstance(node, cst.CSTNode) and matcher.matches(node)


class _FindAll(cst.CSTVisitor):
    def __init__(self, matcher: _Matcher) -> None:
        self.matcher = matcher
        self.found: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.matcher.matches(node):
            self.found.append(node)
        return True


def findall(tree: object, matcher: _Matcher) -> list[cst.CSTNode]:
    """Every node of `tree` (itself included) that matches, in pre-order, as libcst's findall."""
    if not isinstance(tree, cst.CSTNode):
        return []
    finder = _FindAll(matcher)
    tree.visit(finder)
    return finder.found
