"""Optimizer steps on every path of a training step.

Scripts often take one of two paths through a step: `if scaler is not None:
scaler.scale(loss).backward(); scaler.step(optimizer) else: loss.backward();
optimizer.step()` (AMP in the style of torchvision's references), or `if
args.use_optimizer: optimizer.step() else: <a manual SGD update>`. Each path's
step needs the hooks, otherwise compression silently does nothing on the other
path. A manual update (`for p in model.parameters(): p.data.add_(p.grad,
alpha=-lr)`) is an optimizer step.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.transforms import match as m

from .source import Source

#: how a training loop names its "optimizer" when the step is a manual update
#: (`manual update of model.parameters()`): what follows is the updated parameters
MANUAL_UPDATE = "manual update of "


def branches(node: cst.If) -> list[cst.BaseSuite]:
    """The suites of an if / elif / else chain, in order."""
    out: list[cst.BaseSuite] = [node.body]
    orelse = node.orelse
    while orelse is not None:
        if isinstance(orelse, cst.If):
            out.append(orelse.body)
            orelse = orelse.orelse
        else:
            out.append(orelse.body)
            orelse = None
    return out


def branch_holding(src: Source, node: cst.CSTNode, chain: cst.If) -> cst.BaseSuite | None:
    """The suite of `chain` (an if/elif/else chain) that holds `node`, if any."""
    suites = {id(s): s for s in branches(chain)}
    for ancestor in src.ancestors(node):
        if id(ancestor) in suites:
            return ancestor  # type: ignore[return-value]
    return None


def exclusive(src: Source, a: cst.CSTNode, b: cst.CSTNode) -> bool:
    """`a` and `b` lie in different branches of one if/elif/else chain: no run reaches both."""
    for ancestor in src.ancestors(a):
        if isinstance(ancestor, cst.If) and not isinstance(src.parent(ancestor), cst.If):
            first, second = branch_holding(src, a, ancestor), branch_holding(src, b, ancestor)
            if first is not None and second is not None and first is not second:
                return True
    return False


def is_manual_update(node: cst.CSTNode) -> bool:
    """`for p in model.parameters(): p.data.add_(p.grad, alpha=-lr)` and its variants
    (`p -= lr * p.grad`, `p.data.sub_(lr * p.grad.data)`): a loop over parameters that
    changes each one in place from its gradient."""
    if not isinstance(node, cst.For) or not isinstance(node.target, cst.Name):
        return False
    param = node.target.value
    if not m.findall(node.body, m.Attribute(value=m.Name(param), attr=m.Name("grad"))):
        return False
    on_param = m.Name(param) | m.Attribute(value=m.Name(param), attr=m.Name("data"))
    in_place_call = m.Call(
        func=m.Attribute(
            value=on_param, attr=m.Name(value=m.MatchIfTrue(lambda s: s.endswith("_")))
        )
    )
    return bool(
        m.findall(node.body, m.AugAssign(target=on_param)) or m.findall(node.body, in_place_call)
    )


def manual_updates(src: Source, scope: cst.CSTNode) -> list[cst.For]:
    """The manual parameter updates written in `scope` itself (not in nested functions)."""
    found: list[cst.For] = []
    for node in src.for_loops:
        if _scope_of(src, node) is scope and is_manual_update(node):
            found.append(node)  # type: ignore[arg-type]
    return found


def _scope_of(src: Source, node: cst.CSTNode) -> cst.CSTNode:
    for ancestor in src.ancestors(node):
        if isinstance(ancestor, cst.FunctionDef | cst.Lambda | cst.ClassDef):
            return ancestor
    return src.module_of(node)


def sibling_suites(
    src: Source, step: cst.CSTNode, backward: cst.CSTNode, stop: cst.CSTNode
) -> list[cst.BaseSuite]:
    """The other branches of each if/elif/else chain that holds `step` but not `backward`,
    below `stop` (the step loop): the paths on which this step does not run."""
    out: list[cst.BaseSuite] = []
    for ancestor in src.ancestors(step):
        if ancestor is stop:
            break
        if not isinstance(ancestor, cst.If) or isinstance(src.parent(ancestor), cst.If):
            continue
        if branch_holding(src, backward, ancestor) is not None:
            continue
        holding = branch_holding(src, step, ancestor)
        out.extend(s for s in branches(ancestor) if s is not holding)
    return out


def within(src: Source, node: cst.CSTNode, suites: list[cst.BaseSuite]) -> bool:
    ids = {id(s) for s in suites}
    return any(id(a) in ids for a in src.ancestors(node))
