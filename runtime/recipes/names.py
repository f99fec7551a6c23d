"""Recipe names against the model: parameter and module names, exact or as regexes.

A key is the name itself or a regular expression fullmatched against every
name; in a mapping, the first key that matches a name wins (Distiller's rule
for overrides). `'*'` is Distiller's "every other parameter". A key that matches
nothing is an error with the closest names the model has (difflib).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .schema import RecipeError

__all__ = ["WEIGHTS", "first_match", "match_keys"]

WILDCARD = "*"
#: what pruners and regularizers act on (biases and norm scales are left alone)
WEIGHTS = "weight with 2+ dimensions"


def _compile(key: str) -> re.Pattern[str] | None:
    try:
        return re.compile(key)
    except re.error:
        return None


def _matches(key: str, name: str) -> bool:
    if key == name or key == WILDCARD:
        return True
    pattern = _compile(key)
    return pattern is not None and pattern.fullmatch(name) is not None


def unknown_name_error(key: str, names: Iterable[str], what: str, where: str) -> RecipeError:
    names = list(names)
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    sample = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return RecipeError(
        f"{where}: {key!r} matches no {what} of the model{hint} (the model has: {sample})"
    )


def first_match(
    mapping: Mapping[str, Any], names: Iterable[str], what: str, where: str
) -> dict[str, Any]:
    """`name -> value` of the first key matching each name; every key must match something
    (except a trailing wildcard). Keys are tried in the mapping's order."""
    names = list(names)
    out: dict[str, Any] = {}
    used: set[str] = set()
    for name in names:
        for key, value in mapping.items():
            if _matches(str(key), name):
                out[name] = value
                used.add(str(key))
                break
    for key in mapping:
        if str(key) not in used and str(key) != WILDCARD:
            raise unknown_name_error(str(key), names, what, where)
    return out


def match_keys(keys: Iterable[str], names: Iterable[str], what: str, where: str) -> list[str]:
    """The names (in model order) matched by any of `keys`; every key must match."""
    return list(first_match({k: True for k in keys}, names, what, where))
