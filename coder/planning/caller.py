"""QAT when training starts in a function that receives the model as a parameter.

QAT hands back a new module (`model = manager.model`). Rebinding it inside
`train(model, ...)` would reach only the function's local name, while its caller
goes on evaluating and saving the fp32 model it passed in. Where the one caller
is in reach, the manager is prepared there instead, around the call, and passed
down to the hooks; otherwise the plan is refused with the way out.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.expressions import unwrap
from neural_coder.analysis.index import (
    Function,
    Index,
    Scope,
    enclosing_loop,
    iter_returns,
)
from neural_coder.analysis.source import Source
from neural_coder.analysis.workers import describe, worker_start
from neural_coder.analysis.wraps import Wrap, find_wrap
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m


@dataclass
class CallerSite:
    """Where the caller hands the model to the training function."""

    function: Function  # the training function
    call: cst.Call
    statement: cst.BaseStatement  # the caller's statement that holds the call
    scope: Scope
    model: str  # the caller's name for the model
    wrap: Wrap | None  # `model = DDP(model)` in the caller before the call


def caller_of_parameter(
    index: Index,
    loop: TrainingLoop,
    bare: str,
    distillation: bool,
    wrapped_at: int | None,
    in_place: bool = False,
) -> CallerSite | str | None:
    """None when the model QAT hands back reaches whoever goes on with it (the model is
    no parameter, or the caller gets it back, or no caller keeps it). The call site to
    prepare in when there is one; a refusal with the way out otherwise, or, with
    `in_place` (the bundled runtime converts the module itself) where the one call site
    runs once, what the report says of the in-place QAT."""
    src = index.source
    fn = index.function(loop.entry_scope)
    param = bare.split(".")[0]
    if fn is None or param not in fn.all_params():
        return None
    sites = index.call_sites(fn)
    started = worker_start(index, fn) if not sites else None
    if started is not None:
        raise AnalysisError(
            f"training runs in {fn.key}(), which worker processes run on the model handed to "
            f"them ({describe(index, started)}): QAT replaces the model with a quantized "
            "module inside each worker, while the parent goes on evaluating and saving the "
            "model it passed",
            path=src.path,
            line=src.line(fn.node),
            hint="train in one process (call the function on the model directly) for QAT; "
            "pruning works on this layout as it is (its masks zero the shared weights)",
        )
    held = {
        id(call): arg
        for call in sites
        if (arg := index.bind_arguments(call, fn).get(param)) is not None
        and isinstance(unwrap(arg), cst.Name | cst.Attribute)
    }
    if sites and not held:
        return None  # `fit(Classifier(), loader)`: no caller keeps the model it passed
    if sites and _handed_back(index, fn, sites, bare):
        return None  # `model = train(model, ...)` with `return model`: the caller gets it back
    found = _why_not_in_the_caller(index, loop, fn, sites, bare, distillation, wrapped_at)
    why, convertible = found if found is not None else (None, False)
    if in_place and convertible:
        return (
            f"{fn.key}() receives the model as {param!r} and its caller (line "
            f"{src.line(sites[0])}) goes on with the module it passed, but cannot be "
            f"prepared there ({why}): QAT prepares and converts that module in place "
            "(prepare_compression(..., in_place=True)), so it is the int8 model after training"
        )
    if why is None:
        call = sites[0]
        arg = unwrap(held[id(call)])
        assert isinstance(arg, cst.Name)
        scope = index.scope_of(call)
        wrap = find_wrap(index, arg.value, scope, src.line(call))
        return CallerSite(fn, call, src.statement_of(call), scope, arg.value, wrap)
    lines = ", ".join(str(src.line(c)) for c in sites)
    caller = (
        "its callers (in other files)"
        if not sites
        else f"its caller (line {lines})"
        if len(sites) == 1
        else f"its callers (lines {lines})"
    )
    raise AnalysisError(
        f"training starts in {fn.key}(), which receives the model as its parameter "
        f"{param!r}: QAT replaces the model with a quantized module, and "
        f"{caller} would go on evaluating and saving the model passed in, and it cannot "
        f"be prepared there: {why}",
        path=src.path,
        line=src.line(fn.node),
        hint=f"have {fn.key}() return the model and re-bind it at the call site, or move the "
        "epoch loop into the function that builds the model; pruning and distillation "
        "work on this layout as it is",
    )


def _handed_back(index: Index, fn: Function, sites: list[cst.Call], bare: str) -> bool:
    """`fn` returns the model, whole (`return model`) or as an item of a tuple (`return
    model, history`), and every caller binds what it returns (`model, history =
    run_training(model, ...)`: that item to a name)."""
    src = index.source
    positions = set()
    for r in iter_returns(fn.node):
        if m.matches(r.value, m.Name(bare)):
            positions.add(None)
        elif isinstance(r.value, cst.Tuple):
            positions |= {
                i for i, e in enumerate(r.value.elements) if m.matches(e.value, m.Name(bare))
            }
    if len(positions) != 1:
        return False
    position = positions.pop()
    for call in sites:
        assign = src.parent(call)
        if not isinstance(assign, cst.Assign):
            return False
        target = assign.targets[0].target
        if position is not None and not (
            isinstance(target, cst.Tuple)
            and len(target.elements) > position
            and isinstance(target.elements[position].value, cst.Name)
        ):
            return False
    return True


def _why_not_in_the_caller(
    index: Index,
    loop: TrainingLoop,
    fn: Function,
    sites: list[cst.Call],
    bare: str,
    distillation: bool,
    wrapped_at: int | None,
) -> tuple[str, bool] | None:
    """Why the manager cannot be prepared around the one call of `fn`, or None; with it,
    whether the one caller, running the call once, holds the module QAT would convert
    (then the runtime can convert that module in place)."""
    src = index.source
    if not sites:
        return "nothing in the project calls it", False
    if len(sites) > 1:
        return "it is called from several places", False
    if fn.cls is not None:
        return "it is a method", _runs_once(index, sites[0])
    if wrapped_at is not None:
        return f"{fn.key}() wraps the model at line {wrapped_at}", False
    if bare != bare.split(".")[0]:
        return f"the model is {bare}, not the parameter itself", False
    call = sites[0]
    arg = unwrap(index.bind_arguments(call, fn)[bare])
    if not isinstance(arg, cst.Name):
        return (
            f"the caller passes {src.code(arg)}, not a name it can re-bind",
            _runs_once(index, call),
        )
    parent = src.parent(call)
    statement = src.statement_of(call)
    if not (
        isinstance(parent, cst.Expr | cst.Assign)
        and isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
    ):
        return (
            f"the call at line {src.line(call)} is part of a larger expression",
            _runs_once(index, call),
        )
    if enclosing_loop(index, statement) is not None:
        return f"the call at line {src.line(call)} runs in a loop", False
    if distillation and loop.teacher_in_entry is not None:
        return f"the teacher {loop.teacher_in_entry} is built inside {fn.key}()", False
    return None


def _runs_once(index: Index, call: cst.Call) -> bool:
    """No loop around `call` in its function, and no comprehension
    (`[runner.fit(net, d) for d in datasets]`): the module it passes is trained once."""
    return enclosing_loop(index, call) is None and not any(
        isinstance(node, cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp)
        for node in index.source.ancestors(call)
    )


def attribute_alias(index: Index, name: str, scope: Scope, before_line: int) -> str | None:
    """`self.model` when the training function reads the model through a local alias
    bound before training (`model = self.model`, `model, config = self.model, self.config`)."""
    src = index.source
    if not name.isidentifier():
        return None
    earlier = [a for a in index.assignments_in(name, scope) if src.line(a.statement) < before_line]
    if not earlier:
        return None
    value = unwrap(max(earlier, key=lambda a: src.line(a.statement)).value)
    if m.matches(value, m.Attribute(value=m.Name("self"))):
        return src.code(value)
    return None


def refuse_qat_on_a_constructor_parameter(
    index: Index, loop: TrainingLoop, attribute: str, in_place: bool = False
) -> str | None:
    """`self.model = model` in `__init__(self, model, ...)`: whoever built the class keeps
    the module it passed, and QAT hands back a new one that only `self.model` would see.
    Refused; with `in_place` (the bundled runtime prepares and converts the module
    itself), what the report says instead. None when the layout needs neither."""
    src = index.source
    cls = index.class_of(loop.entry_scope)
    if cls is None or not attribute.startswith("self."):
        return
    init = next(
        (f for f in index.functions.values() if f.cls is cls and f.name == "__init__"), None
    )
    if init is None:
        return None
    param = next(iter(index.params_kept_as(init, attribute)), None)
    if param is None:
        return None
    sites = index.call_sites(init)
    kept = [
        call
        for call in sites
        if isinstance(
            arg := unwrap(index.bind_arguments(call, init).get(param, cst.Name("_"))), cst.Name
        )
        and _read_after(index, arg.value, call)
    ]
    if sites and not kept:
        return None  # `Trainer(Net(), loader)`, or only `trainer.model` is read afterwards
    if in_place:
        builder = (
            f"its builder (line {', '.join(str(src.line(c)) for c in kept)})"
            if kept
            else "the code that builds it"
        )
        return (
            f"{cls.name.value}.__init__() receives the model as {param!r}, and {builder} goes "
            "on with the module it passed: QAT prepares and converts that module in place "
            "(prepare_compression(..., in_place=True)), so it is the int8 model after training"
        )
    where = (
        f"the code that builds {cls.name.value} (line {', '.join(str(src.line(c)) for c in kept)})"
        if kept
        else f"the code that builds {cls.name.value} (in other files)"
    )
    raise AnalysisError(
        f"training runs on {attribute}, which {cls.name.value}.__init__() receives as its "
        f"parameter {param!r}: QAT replaces the model with a quantized module that only "
        f"{attribute} would see, and {where} would go on with the model it passed in",
        path=src.path,
        line=src.line(init.node),
        hint=f"build the model inside {cls.name.value} or read it back from there after "
        f"training ({attribute.replace('self.', 'trainer.')}); pruning and distillation work "
        "on this layout as it is",
    )


def _read_after(index: Index, name: str, call: cst.Call) -> bool:
    """`name` is read in the scope of `call` after it (`evaluate(model)` after
    `trainer = Trainer(model)`; `trainer.model` is another name)."""
    src = index.source
    scope = index.scope_of(call)
    line = src.line(src.statement_of(call))
    for node in m.findall(scope, m.Name(name)):
        if node not in src.positions or _is_attribute_name(src, node):
            continue
        inner = index.scope_of(node)
        if inner is scope:
            if src.line(node) > line:
                return True
        elif _reads_enclosing(index, name, inner, scope):
            return True  # a callback defined in the scope reads the model when it runs
    return False


def _reads_enclosing(index: Index, name: str, inner: cst.CSTNode, scope: cst.CSTNode) -> bool:
    """`name` in the nested function `inner` is the one of `scope` (not its own parameter
    or local)."""
    fn = index.function(inner)
    if fn is None or name in fn.all_params() or index.assignments_in(name, inner):
        return False
    return index.scope_of(inner) is scope


def _is_attribute_name(src: Source, node: cst.CSTNode) -> bool:
    parent = src.parent(node)
    return isinstance(parent, cst.Attribute) and parent.attr is node


def refuse_qat_before_a_weight_copy(
    index: Index, model: str, scope: Scope, prepared_at: int, training_at: int, wrap: str
) -> None:
    """`teacher.load_state_dict(student.module.state_dict())` after the wrap that QAT
    must come before: the copy would read the QAT-prepared model, whose state dict
    (fused conv+bn, fake-quant observers) no longer fits the plain teacher."""
    src = index.source
    for call in index.calls:
        func = call.func
        if not (
            isinstance(func, cst.Attribute)
            and func.attr.value == "load_state_dict"
            and call.args
            and index.scope_of(call) is scope
            and prepared_at <= src.line(call) < training_at
        ):
            continue
        source = unwrap(call.args[0].value)
        if not m.matches(source, m.Call(func=m.Attribute(attr=m.Name("state_dict")))):
            continue
        owner = src.code(source.func.value)  # type: ignore[attr-defined]
        if owner.split(".")[0] != model:
            continue
        raise AnalysisError(
            f"line {src.line(call)} copies {owner}'s weights into {src.code(func.value)} after "
            f"{wrap}, and QAT must prepare {model} before that: the copy would read the "
            "QAT-prepared model, whose state dict (fused conv+bn, fake-quant observers) does "
            "not load into the plain model",
            path=src.path,
            line=src.line(call),
            hint=f"copy the weights before the wrap (move line {src.line(call)} above it), or "
            "use pruning or distillation, which keep the state dict as it is",
        )


def refuse_qat_on_a_container_item(src: Source, loop: TrainingLoop) -> None:
    """QAT hands back a new module (`model = manager.model`); the training function
    takes the model out of a container (`module_list[0]`), which would go on holding
    the float module: the loop would train it without fake quantization."""
    if loop.model_item is None:
        return
    raise AnalysisError(
        f"the loop takes the model out of a container ({loop.model_item}, which is "
        f"{loop.model_in_entry} where training starts): QAT hands back a new module, and "
        f"{loop.model_item} would go on holding the float one, trained without fake "
        "quantization",
        path=src.path,
        line=src.line(loop.step_loop),
        hint=f"hand {loop.model_in_entry} to the training function as an argument of its own, "
        "or use pruning or distillation, which change the model in place",
    )
