"""The positional parameters of a model's `forward`, read from the class of the project
that builds it (`model = GPT(config)`, `GPT.from_pretrained(...)`, through
`torch.compile` / DDP wraps), so that a call mixing positional and keyword inputs
(`model(X, targets=Y)`) can be fed as keyword inputs (`{"idx": X, "targets": Y}`)."""

from __future__ import annotations

import libcst as cst

from .index import Index, Scope
from .wraps import is_wrap, values_through_wraps

#: class methods that build an instance of their class
_CONSTRUCTORS = frozenset({"from_pretrained", "from_config", "load_from_checkpoint"})


def forward_positional_params(
    index: Index, model: cst.BaseExpression, scope: Scope
) -> list[str] | None:
    """The positional parameters of `forward` (without `self`) of the one class every
    construction of `model` in reach builds; None when a construction is not a class of
    the project, the classes differ, or `forward` takes `*args`."""
    found: list[str] | None = None
    for leaf, _ in values_through_wraps(index, model, scope):
        if (isinstance(leaf, cst.Name) and leaf.value == "None") or is_wrap(index, leaf):
            # `model = None` before it is built; a wrap met again (`model = DDP(model)`
            # read through another assignment): its model is among the other values
            continue
        cls = _constructed_class(index, leaf)
        forward = index.method_of(cls, "forward") if cls is not None else None
        if forward is None or isinstance(forward.node.params.star_arg, cst.Param):
            return None  # not a class of the project, or `forward(self, *args)`
        params = forward.positional_params()
        if found is not None and params != found:
            return None
        found = params
    return found


def keyword_batch(
    index: Index,
    call: cst.Call,
    positional: list[cst.Arg],
    keywords: list[cst.Arg],
    scope: Scope,
) -> str | None:
    """`{"idx": X, "targets": Y}` for `model(X, targets=Y)` (the inputs as written in
    `positional` / `keywords`): the dict batch the runtime passes as keyword inputs, the
    positional ones named by the model's `forward`; None when they cannot be named."""
    src = index.source
    names: list[str] = []
    if positional:
        params = forward_positional_params(index, call.func, scope)
        if params is None or len(params) < len(positional):
            return None
        names = params[: len(positional)]
    pairs = [*zip(names, positional), *((k.keyword.value, k) for k in keywords)]  # type: ignore[union-attr]
    return "{" + ", ".join(f'"{name}": {src.code(a.value)}' for name, a in pairs) + "}"


def _constructed_class(index: Index, leaf: cst.BaseExpression) -> cst.ClassDef | None:
    if not isinstance(leaf, cst.Call):
        return None
    name = index.qualified(leaf.func)
    owner, _, last = name.rpartition(".")
    if last in _CONSTRUCTORS and owner:
        name = owner
    if "." not in name and name in index.classes:
        return index.classes[name]
    return index.imported_class(name, leaf)
