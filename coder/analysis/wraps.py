"""Wraps around a model: `DDP(model)`, `torch.compile(model)`, `accelerator.prepare(model, ...)`.

The runtime compresses the bare module, so the compression manager is prepared
before the wrap and the wrap takes the prepared model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from .index import Index, Scope, unwrap_pass_through
from .source import Source

WRAPPERS = (
    "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel",
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.compile",
    "torch.distributed.fsdp.FullyShardedDataParallel",
)
#: wraps whose `.module` is the bare model, which they keep calling when it is replaced
PARALLEL_WRAPPERS = tuple(w for w in WRAPPERS if w != "torch.compile")
# accelerate and Lightning Fabric hand the model back wrapped, in argument order
ACCELERATE_METHODS = ("prepare", "prepare_model", "setup_module", "setup")
# the same model with adapters added around its weights (not a wrap to compress before)
ADAPTER_WRAPPERS = ("peft.get_peft_model", "peft.mapping.get_peft_model")


@dataclass
class Wrap:
    statement: cst.BaseStatement  # the assignment that wraps the model
    inner: str  # the bare model's name, as written inside the wrap
    what: str  # "DistributedDataParallel", "accelerator.prepare", ...


def values_through_wraps(
    index: Index, expr: cst.BaseExpression, scope: Scope
) -> Iterator[tuple[cst.BaseExpression, Scope]]:
    """`Index.values_of`, looking through wraps: `DDP(model)` stands for `model`."""
    for leaf, where in index.values_of(expr, scope):
        inner = _wrapped(index, leaf)
        if inner is None:
            yield leaf, where
        else:
            yield from index.values_of(inner, where)


def parallel_wrap(index: Index, model: str, scope: Scope) -> str | None:
    """The wrapper's name (`DataParallel`) when every value `model` holds in `scope` is a
    data-parallel wrap (`nn.DataParallel(net)`, DDP, FSDP) of a model; else None."""
    leaves = [leaf for leaf, _ in index.values_of(cst.parse_expression(model), scope)]
    names = {
        index.qualified(leaf.func) if isinstance(leaf, cst.Call) and leaf.args else ""
        for leaf in leaves
    }
    if not leaves or not names <= set(PARALLEL_WRAPPERS):
        return None
    return names.pop().rsplit(".", 1)[-1] if len(names) == 1 else "the data-parallel wrap"


def is_wrap(index: Index, leaf: cst.BaseExpression) -> bool:
    """`DDP(model)`, `torch.compile(model)`: a wrap around a model, not a model built."""
    return _wrapped(index, leaf) is not None


def _wrapped(index: Index, leaf: cst.BaseExpression) -> cst.BaseExpression | None:
    if not isinstance(leaf, cst.Call) or not leaf.args:
        return None
    first = leaf.args[0]
    if first.star or first.keyword is not None:
        return None
    if index.qualified(leaf.func) in (*WRAPPERS, *ADAPTER_WRAPPERS) or m.matches(
        leaf.func, m.Attribute(attr=m.Name("prepare_model"))
    ):
        return first.value
    return None


def find_wrap(index: Index, name: str, scope: Scope, before_line: int) -> Wrap | None:
    """The last assignment to `name` in `scope` before `before_line`, when it wraps a model."""
    src = index.source
    assignments = [
        a for a in index.assignments_in(name, scope) if src.line(a.statement) < before_line
    ]
    if not assignments:
        return None
    assignments.sort(key=lambda a: src.line(a.statement))
    # the first of the wraps at the end of the model's re-bindings, looking back through
    # those that take the model itself (`model = torch.compile(model)` then
    # `if ddp: model = DDP(model)`; `model = smart_DDP(model)`, `model = model.to(device)`)
    earliest: Wrap | None = None
    for assignment in reversed(assignments):
        wrap = _wrap_of(index, assignment.statement, name)
        if wrap is not None:
            if earliest is not None and wrap.inner != earliest.inner:
                break
            earliest = wrap
            continue
        value = unwrap_pass_through(assignment.value)
        if m.matches(value, m.Name(name)):
            continue  # `model = model.cuda(args.gpu)`: the same model, moved
        if not (isinstance(value, cst.Call) and name in _names(value)):
            break
    return earliest


def find_wrap_in_class(index: Index, name: str, cls: cst.ClassDef) -> tuple[Wrap, Scope] | None:
    """`self.model = DDP(model)` in a method of `cls` (usually `__init__`), with the
    method's scope, when training reads `self.model` in another method."""
    if not name.startswith("self."):
        return None
    src = index.source
    for assignment in sorted(
        index.class_assignments(name, cls), key=lambda a: src.line(a.statement), reverse=True
    ):
        wrap = _wrap_of(index, assignment.statement, name)
        if wrap is not None:
            return wrap, assignment.scope
    return None


def unprepared_wrap(
    index: Index, name: str, scope: Scope, cls: cst.ClassDef | None
) -> cst.Call | None:
    """A wrap of `name` (`DDP(build_model())`, `self.model = DDP(...)`) that the tool could
    not prepare the bare model before: QAT would meet the wrapper at run time."""
    assignments = list(index.assignments_in(name, scope))
    if cls is not None and name.startswith("self."):
        assignments += index.class_assignments(name, cls)
    for assignment in assignments:
        value = unwrap_pass_through(assignment.value)
        if isinstance(value, cst.Call) and index.qualified(value.func) in WRAPPERS:
            return value
    return None


def _names(node: cst.CSTNode) -> set[str]:
    return {n.value for n in m.findall(node, m.Name())}  # type: ignore[union-attr]


def wrap_anchor(src: Source, wrap: Wrap, before: cst.CSTNode) -> cst.BaseStatement:
    """Where the bare model is prepared: before the wrap, or, when the wrap is one
    branch of an `if` (`if args.distributed: ... elif args.gpu: ... else: DataParallel`),
    before the whole `if`, so the manager exists on every path. `before` (the training
    loop) stays after the anchor."""
    around_loop = {id(node) for node in src.ancestors(before)}
    anchor: cst.BaseStatement = wrap.statement
    for ancestor in src.ancestors(wrap.statement):
        if isinstance(ancestor, cst.FunctionDef | cst.ClassDef) or id(ancestor) in around_loop:
            break
        if isinstance(ancestor, cst.If) and not isinstance(src.parent(ancestor), cst.If):
            anchor = ancestor
    return _before_aliases(src, anchor, wrap.inner)


def _before_aliases(src: Source, anchor: cst.BaseStatement, model: str) -> cst.BaseStatement:
    """Up over the aliases bound right before the wrap (`model_without_ddp = model`): QAT
    replaces the model, and an alias bound before the preparation would keep the
    unprepared one, which such scripts then save and hand to the optimizer."""
    block = src.parent(anchor)
    body = getattr(block, "body", None)
    if not isinstance(body, list | tuple) or anchor not in body:
        return anchor
    at = body.index(anchor)
    while at > 0 and m.matches(
        body[at - 1],
        m.SimpleStatementLine(
            body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Name(model))]
        ),
    ):
        at -= 1
    return body[at]


def _wrap_of(index: Index, statement: cst.BaseStatement, name: str) -> Wrap | None:
    src = index.source
    if not isinstance(statement, cst.SimpleStatementLine) or not isinstance(
        statement.body[0], cst.Assign
    ):
        return None
    assign = statement.body[0]
    call = unwrap_pass_through(assign.value)
    if not isinstance(call, cst.Call) or not call.args:
        return None
    qualified = index.qualified(call.func)
    func = call.func
    if qualified in WRAPPERS:
        argument = call.args[0]
        what = qualified.rsplit(".", 1)[-1]
    elif isinstance(func, cst.Attribute) and func.attr.value in ACCELERATE_METHODS:
        argument = _argument_for(assign, call, name, src)
        what = src.code(func)
    else:
        return None
    if argument is None or argument.star or argument.keyword is not None:
        return None
    inner = unwrap_pass_through(argument.value)
    if isinstance(inner, cst.Attribute) and m.matches(inner, m.Attribute(value=m.Name("self"))):
        # `self.model = DDP(self.model, ...)` in `__init__`: the attribute is the bare model
        return Wrap(statement, src.code(inner), what)
    if not isinstance(inner, cst.Name):
        return None
    return Wrap(statement, inner.value, what)


def _argument_for(assign: cst.Assign, call: cst.Call, name: str, src: Source) -> cst.Arg | None:
    """The argument of `a, b = accelerator.prepare(x, y)` that becomes `name`."""
    target = assign.targets[0].target
    if isinstance(target, cst.Name):
        return call.args[0] if len(call.args) == 1 else None
    if isinstance(target, cst.Tuple | cst.List):
        names = [src.code(e.value) for e in target.elements]
        if name in names and len(names) == len(call.args):
            return call.args[names.index(name)]
    return None


PEFT_IN_PLACE = ("add_adapter", "load_adapter")  # transformers' PEFT integration
PEFT_INJECT = "peft.inject_adapter_in_model"


def peft_adapters(index: Index, model: str, scope: Scope) -> cst.Call | None:
    """The call that gives `model` PEFT adapters (`get_peft_model(model, config)`,
    `PeftModel.from_pretrained(...)`, `model.add_adapter(config)`), if any."""
    for leaf, _ in index.values_of(cst.parse_expression(model), scope):
        if isinstance(leaf, cst.Call) and index.qualified(leaf.func).startswith("peft."):
            return leaf
    for call in index.calls:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in PEFT_IN_PLACE:
            if index.source.code(func.value) == model and index.scope_of(call) is scope:
                return call
        elif index.qualified(func) == PEFT_INJECT and any(
            index.source.code(a.value) == model for a in call.args
        ):
            return call
    return None
