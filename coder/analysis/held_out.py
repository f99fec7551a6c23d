"""Evaluations that do not take the model as a parameter, or that return one number per
data split: the way small language-model scripts measure themselves.

`estimate_loss()` reads the model the script built in the scope that defines it (a
module-level `model`, or a local of the function it is nested in) and returns
`{"train": ..., "val": ...}`: the held-out entry is the metric, and a tuner can only
evaluate a candidate model by binding that name to it for the call.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.transforms import match as m

from .index import Function, Index, Scope, iter_returns

#: the keys a split-keyed result gives its held-out metric under, preferred first
HELD_OUT_SPLITS = ("val", "valid", "validation", "eval", "dev", "test")
EMPTY_DICTS = m.Dict(elements=[]) | m.Call(func=m.Name("dict"), args=[])


def held_out_key(index: Index, fn: Function) -> str | None:
    """The held-out key of the dict every return of `fn` hands back, keyed by split
    (`out[split] = losses.mean()` for `split in ["train", "val"]`, or a literal
    `{"train": a, "val": b}`); None when `fn` returns anything else."""
    values = [r.value for r in iter_returns(fn.node)]
    if not values or any(v is None for v in values):
        return None
    keys: set[str] = set()
    for value in values:
        found = _split_keys(index, fn, value)  # type: ignore[arg-type]
        if not found:
            return None
        keys |= found
    return next((split for split in HELD_OUT_SPLITS if split in keys), None)


def _split_keys(index: Index, fn: Function, value: cst.BaseExpression) -> set[str]:
    if isinstance(value, cst.Dict):
        keys = [_string(e.key) for e in value.elements if isinstance(e, cst.DictElement)]
        return set(keys) if keys and None not in keys else set()  # type: ignore[arg-type]
    if not isinstance(value, cst.Name):
        return set()
    assigned = index.assignments_in(value.value, fn.node)
    if len(assigned) != 1 or not m.matches(assigned[0].value, EMPTY_DICTS):
        return set()
    keys: set[str] = set()
    for target in m.findall(fn.node, m.AssignTarget(target=m.Subscript(value=m.Name(value.value)))):
        subscript = target.target  # type: ignore[attr-defined]
        element = subscript.slice[0].slice
        if not isinstance(element, cst.Index):
            return set()
        found = _key_values(fn, element.value)
        if not found:
            return set()
        keys |= found
    return keys


def _key_values(fn: Function, key: cst.BaseExpression) -> set[str]:
    """The strings `key` is: a literal, or the variable of a loop over literal strings."""
    literal = _string(key)
    if literal is not None:
        return {literal}
    if not isinstance(key, cst.Name):
        return set()
    for loop in m.findall(fn.node, m.For(target=m.Name(key.value))):
        items = loop.iter  # type: ignore[attr-defined]
        if isinstance(items, cst.List | cst.Tuple):
            strings = [_string(e.value) for e in items.elements]
            if strings and None not in strings:
                return set(strings)  # type: ignore[arg-type]
    return set()


def _string(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def names_read_from_scope(index: Index, fn: Function, call_scope: Scope) -> list[str]:
    """The names `fn` runs (calls, or calls a method of) without being handed them: read
    from the scope that defines it (the module, or the function it is nested in); only
    when the call is made in that same scope, so that a tuner's candidate model can be
    bound to the name there for the call. evaluation.find_evaluations keeps the models."""
    defining = index.scope_of(fn.node)
    if defining is not call_scope:
        return []
    params = set(fn.all_params())
    return [
        name
        for name in _called_names(fn)
        if name not in params
        and not index.assignments_in(name, fn.node)
        and not _declared(fn.node, name)
        # `global model` in the defining function: no `nonlocal` could bind it
        and not (isinstance(defining, cst.FunctionDef) and _declared(defining, name))
    ]


def _called_names(fn: Function) -> list[str]:
    """Names `fn` calls, or calls a method of (`model(x)`, `model.eval()`), in order."""
    names: list[str] = []
    for call in m.findall(fn.node, m.Call()):
        func = call.func  # type: ignore[attr-defined]
        if isinstance(func, cst.Attribute):
            func = func.value
        if isinstance(func, cst.Name) and func.value not in names:
            names.append(func.value)
    return names


def _declared(node: cst.FunctionDef, name: str) -> bool:
    """`global name` / `nonlocal name` in `node`: it rebinds the outer name itself."""
    return bool(
        m.findall(node, m.Global(names=[m.ZeroOrMore(), m.NameItem(m.Name(name)), m.ZeroOrMore()]))
        or m.findall(
            node, m.Nonlocal(names=[m.ZeroOrMore(), m.NameItem(m.Name(name)), m.ZeroOrMore()])
        )
    )
