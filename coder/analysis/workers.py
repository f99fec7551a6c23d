"""A function started in worker processes or threads: `mp.Process(target=train, args=...)`,
`threading.Thread(target=train)`, `mp.spawn(train, ...)`. Nothing in the file calls it
directly; the worker runs it on the objects handed over (Hogwild: the parent's model in
shared memory), and the parent goes on with its own once the workers join."""

from __future__ import annotations

import libcst as cst

from neural_coder.transforms import match as m

from .index import Function, Index

_TARGET_TAKERS = ("Process", "Thread")
_SPAWNERS = ("spawn", "start_processes")


def worker_start(index: Index, fn: Function) -> cst.Call | None:
    """The call that starts `fn` in a worker, when `fn` is a plain function of the file."""
    if fn.cls is not None:
        return None
    for call in index.calls:
        last = index.qualified(call.func).rsplit(".", 1)[-1]
        if last in _TARGET_TAKERS:
            passed = [a.value for a in call.args if a.keyword and a.keyword.value == "target"]
        elif last in _SPAWNERS:
            passed = [a.value for a in call.args[:1] if a.keyword is None]
        else:
            continue
        if any(m.matches(p, m.Name(fn.name)) for p in passed):
            return call
    return None


def describe(index: Index, call: cst.Call) -> str:
    """`mp.Process(target=train, ...) at line 118`"""
    return f"{index.source.code(call.func)}(...) at line {index.source.line(call)}"
