"""A hand-rolled moving average: `ema = copy.deepcopy(model)`, whose weights the script
averages from the model's after each step, with no class of its own to name it.

`averaging_update` finds the update that makes such a copy an average, in the styles
scripts write it:
- a loop over the two sets of weights that moves the copy's towards the model's in place:
  `for e, p in zip(ema.parameters(), model.parameters()): e.mul_(d).add_(p, alpha=1 - d)`
  (`e.lerp_(p, 1 - d)`, `e.copy_(d * e + (1 - d) * p)`, `e.data = ...`), or YOLOv5's
  `for k, v in ema.state_dict().items(): v *= d; v += (1 - d) * msd[k]`;
- `torch._foreach_lerp_(ema_params, model_params, 1 - d)` (and `_foreach_add_` / `_mul_`);
- a function of the file given both (`update_ema(ema, model, decay)`) that does either.
A copy that only ever takes the model's weights whole (`ema.load_state_dict(...)`,
`e.copy_(p)`) is a frozen snapshot (a teacher), not an average.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from neural_coder.transforms import match as m

from .expressions import free_name_nodes
from .index import Index
from .source import Source

#: in-place tensor methods that move the copy's weights towards the model's
_AVERAGING_METHODS = frozenset({"mul_", "add_", "sub_", "lerp_", "addcmul_", "copy_"})
_DEPTH = 2  # functions followed: update_ema(ema, model) -> _update(ema_p, model_p)


def averaging_update(
    index: Index, copy: str, model: str, within: cst.CSTNode | None = None, depth: int = 0
) -> cst.CSTNode | None:
    """The node (a `for` loop or a call) where `copy`'s weights are averaged from
    `model`'s (both names as the script spells them there), searched in `within` (the
    whole file when None)."""
    src = index.source

    def searched(node: cst.CSTNode) -> bool:
        return within is None or any(a is within for a in src.ancestors(node))

    for loop in src.for_loops:
        if searched(loop) and _averages_in_loop(index, loop, copy, model):
            return loop
    for call in index.calls:
        if not searched(call):
            continue
        if _foreach_average(index, call, copy, model):
            return call
        if depth < _DEPTH and _averages_in_callee(index, call, copy, model, depth):
            return call
    return None


def _refers(index: Index, expr: cst.CSTNode, name: str, other: str) -> bool:
    """`expr` reads `name` (`ema.parameters()` reads `ema`), itself or through a name of
    its scope assigned from it (`msd = model.state_dict()`), not through `other` (the
    copy is assigned from the model: `ema = deepcopy(model)`)."""
    src = index.source
    if _spells(src, expr, name):
        return True
    scope = index.scope_of(expr)
    return any(
        node.value not in (name, other)
        and any(
            _spells(src, a.value, name) and not _spells(src, a.value, other)
            for a in index.assignments_in(node.value, scope)
        )
        for node in free_name_nodes(expr)  # type: ignore[arg-type]
    )


def _spells(src: Source, expr: cst.CSTNode, name: str) -> bool:
    if "." not in name:
        return any(n.value == name for n in free_name_nodes(expr))  # type: ignore[arg-type]
    return any(src.code(node) == name for node in m.findall(expr, m.Attribute()))


def _target_names(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(target, cst.Tuple | cst.List):
        return [e.value for e in target.elements]
    return [target]


def _averages_in_loop(index: Index, loop: cst.For, copy: str, model: str) -> bool:
    """`for e, p in zip(<copy's>, <model's>)` or `for k, v in <copy's>.items()` whose body
    moves the copy's item towards the model's in place."""
    src = index.source
    targets = _target_names(loop.target)
    it = loop.iter
    copy_side: set[str] = set()
    model_side: set[str] = set()
    if isinstance(it, cst.Call) and src.code(it.func) == "zip" and len(it.args) == len(targets):
        for arg, target in zip(it.args, targets):
            names = {src.code(n) for n in _target_names(target)}
            if _refers(index, arg.value, copy, model):
                copy_side |= names
            elif _refers(index, arg.value, model, copy):
                model_side |= names
        if not model_side:
            return False  # the model's weights are not one of those zipped
    elif _refers(index, it, copy, model):
        copy_side = {src.code(n) for t in targets for n in _target_names(t)}
    if not copy_side:
        return False

    def reads_model(node: cst.CSTNode) -> bool:
        return _refers(index, node, model, copy) or any(
            n.value in model_side
            for n in free_name_nodes(node)  # type: ignore[arg-type]
        )

    return any(
        _averaging_write(src, small, copy_side, reads_model)
        for line in m.findall(loop.body, m.SimpleStatementLine())
        for small in line.body  # type: ignore[attr-defined]
    )


def _averaging_write(
    src: Source,
    small: cst.BaseSmallStatement,
    copy_side: set[str],
    reads_model: Callable[[cst.CSTNode], bool],
) -> bool:
    """`small` changes a name of `copy_side` in place by an amount that reads the model:
    `e.mul_(d).add_(p, ...)`, `e.lerp_(p, w)`, `e.copy_(d * e + (1 - d) * p)`,
    `v += (1 - d) * msd[k]`, `e.data = d * e.data + (1 - d) * p.data`."""

    def of_copy(expr: cst.BaseExpression) -> bool:
        while isinstance(expr, cst.Attribute) and expr.attr.value == "data":
            expr = expr.value
        return src.code(expr) in copy_side

    if isinstance(small, cst.AugAssign):
        return of_copy(small.target) and reads_model(small.value)
    if isinstance(small, cst.Assign):
        return (
            any(isinstance(t.target, cst.Attribute) and of_copy(t.target) for t in small.targets)
            and isinstance(small.value, cst.BinaryOperation)
            and reads_model(small.value)
        )
    for call in m.findall(small, m.Call(func=m.Attribute())):
        assert isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
        methods = {call.func.attr.value}
        receiver = call.func.value
        while isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute):
            if receiver.func.attr.value != "detach":  # `e.detach().mul_(d)`: the same storage
                methods.add(receiver.func.attr.value)
            receiver = receiver.func.value
        if not of_copy(receiver) or not methods <= _AVERAGING_METHODS or not reads_model(call):
            continue
        if methods == {"copy_"} and not m.findall(call, m.BinaryOperation()):
            continue  # `e.copy_(p)`: the model's weights taken whole
        return True
    return False


def _foreach_average(index: Index, call: cst.Call, copy: str, model: str) -> bool:
    """`torch._foreach_lerp_(<copy's>, <model's>, w)`, `_foreach_add_(..., alpha=1 - d)`."""
    name = index.qualified(call.func)
    if not name.startswith("torch._foreach_") or not name.endswith("_") or "copy" in name:
        return False
    values = [a.value for a in call.args]
    return (
        len(values) >= 2
        and _refers(index, values[0], copy, model)
        and _refers(index, values[1], model, copy)
    )


def _averages_in_callee(index: Index, call: cst.Call, copy: str, model: str, depth: int) -> bool:
    """`update_ema(ema, model, decay)` (or given their weights): a function of the file
    whose parameters bound to them are averaged there."""
    fn = index.resolve_call(call)
    if fn is None:
        return False
    bound = index.bind_arguments(call, fn)
    copies = [p for p, value in bound.items() if _refers(index, value, copy, model)]
    models = [
        p for p, value in bound.items() if p not in copies and _refers(index, value, model, copy)
    ]
    return any(
        averaging_update(index, c, mp, fn.node, depth + 1) is not None
        for c in copies
        for mp in models
    )
