"""Modules imported on first use, so that `neural-coder --help` and a one-file `optimize`
start fast (tests/coder/test_startup.py lists what must stay out of the start-up imports).

    black = lazy_module("black")   # nothing imported yet
    black.format_str(...)          # imports black here, once

The proxy is not put in `sys.modules`: until an attribute is read, the module is simply
not imported. For type checkers, import the module under `TYPE_CHECKING` as well.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> object:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r}, {state}>"


def lazy_module(name: str) -> LazyModule:
    return LazyModule(name)
