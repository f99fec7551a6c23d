"""The validators every config uses, `ConfigValueError`, `DotDict` and the `_Config` base."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar


class ConfigValueError(ValueError):
    """A config parameter has a value that is not allowed.

    `param` is the parameter's name, `value` the rejected value and `allowed` a
    human description of the allowed values or range.
    """

    def __init__(self, owner: str, param: str, value: Any, allowed: str) -> None:
        self.owner = owner
        self.param = param
        self.value = value
        self.allowed = allowed
        where = f"{owner}: " if owner else ""
        super().__init__(f"{where}{param}={value!r} is not allowed; expected {allowed}")


# -- validators ------------------------------------------------------------------
# A validator takes (owner, param, value) and returns the value to store (possibly
# normalised) or raises ConfigValueError.
Validator = Callable[[str, str, Any], Any]


def _fail(owner: str, param: str, value: Any, allowed: str) -> ConfigValueError:
    return ConfigValueError(owner, param, value, allowed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(
        value
    )


def _choices(allowed: Iterable[Any]) -> str:
    return "one of " + ", ".join(repr(a) for a in allowed)


def one_of(*allowed: Any) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        # True == 1 and False == 0: a bool only passes when a bool is allowed
        if isinstance(value, bool) and not any(a is value for a in allowed):
            raise _fail(owner, param, value, _choices(allowed))
        if not any(a == value and type(a) is type(value) or a is value for a in allowed):
            raise _fail(owner, param, value, _choices(allowed))
        return value

    return check


def boolean(allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, bool):
            raise _fail(owner, param, value, "True or False" + (" or None" if allow_none else ""))
        return value

    return check


def integer(
    minimum: int | None = None, maximum: int | None = None, allow_none: bool = False
) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        ok = _is_int(value)
        if ok and minimum is not None and value < minimum:
            ok = False
        if ok and maximum is not None and value > maximum:
            ok = False
        if not ok:
            bounds = []
            if minimum is not None:
                bounds.append(f">= {minimum}")
            if maximum is not None:
                bounds.append(f"<= {maximum}")
            desc = "an int" + (" " + " and ".join(bounds) if bounds else "")
            raise _fail(owner, param, value, desc + (" or None" if allow_none else ""))
        return value

    return check


def number(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_open: bool = False,
    max_open: bool = False,
) -> Validator:
    """A float (an int is accepted and converted) inside the given interval."""

    def check(owner: str, param: str, value: Any) -> Any:
        ok = _is_number(value)
        if ok and minimum is not None and (value <= minimum if min_open else value < minimum):
            ok = False
        if ok and maximum is not None and (value >= maximum if max_open else value > maximum):
            ok = False
        if not ok:
            low = "(" if min_open else "["
            high = ")" if max_open else "]"
            lo = "-inf" if minimum is None else repr(float(minimum))
            hi = "inf" if maximum is None else repr(float(maximum))
            raise _fail(owner, param, value, f"a float in {low}{lo}, {hi}{high}")
        return float(value)

    return check


def string(allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, str):
            raise _fail(owner, param, value, "a str" + (" or None" if allow_none else ""))
        return value

    return check


def str_list(allowed: Sequence[str] | None = None, regex: bool = False) -> Validator:
    """A list (or tuple) of strings, each in `allowed` when given; stored as a new list."""

    def check(owner: str, param: str, value: Any) -> Any:
        desc = "a list of str" + (f" from {list(allowed)}" if allowed is not None else "")
        if not isinstance(value, (list, tuple)):
            raise _fail(owner, param, value, desc)
        for item in value:
            if not isinstance(item, str) or (allowed is not None and item not in allowed):
                raise _fail(owner, param, value, desc)
            if regex:
                try:
                    re.compile(item)
                except re.error as exc:
                    raise _fail(
                        owner, param, value, f"valid regular expressions ({item!r}: {exc})"
                    ) from None
        return list(value)

    return check


def mapping(allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, Mapping):
            raise _fail(owner, param, value, "a dict" + (" or None" if allow_none else ""))
        return copy.deepcopy(dict(value))

    return check


def anything(owner: str, param: str, value: Any) -> Any:
    return value


class DotDict(dict):
    """A dict whose keys are also attributes (INC's `DotDict`, flat)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __deepcopy__(self, memo: dict[int, Any]) -> DotDict:
        return DotDict(copy.deepcopy(dict(self), memo))


class _Config:
    """Base: attributes listed in `_rules` are validated whenever they are set."""

    _rules: ClassVar[dict[str, Validator]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        rule = type(self)._rules.get(name)
        if rule is not None:
            value = rule(type(self).__name__, name, value)
        object.__setattr__(self, name, value)

    def _fields(self) -> list[str]:
        return list(type(self)._rules)

    def to_dict(self) -> dict[str, Any]:
        """The validated fields (nested configs as dicts)."""
        out: dict[str, Any] = {}
        for name in self._fields():
            value = getattr(self, name, None)
            out[name] = value.to_dict() if isinstance(value, _Config) else value
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k, None)!r}" for k in self._fields())
        return f"{type(self).__name__}({inner})"


def _instance_of(cls: type, allow_none: bool = False) -> Validator:
    def check(owner: str, param: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, cls):
            raise _fail(
                owner, param, value, f"a {cls.__name__}" + (" or None" if allow_none else "")
            )
        return value

    return check
