"""A moving average of the model kept beside it (`ema = ModelEMA(model)`: YOLOv5, timm's
`ModelEma*`, torch's `AveragedModel`, diffusers' `EMAModel(unet.parameters())`).

Such scripts evaluate and save the averaged copy, whose weights are averaged from the
model's: pruned positions decay but never reach zero, and QAT leaves the copy float.
`ema_copy` finds it; `--target inc` is refused (`refuse_an_averaged_copy`).
With the bundled runtime the plan hands the copy to `compression_manager.track_copy(ema)`:
pruning applies the masks to it too, and QAT converts it to int8 with the model at the
end of training. For QAT the copy must be a copy of the prepared (fake-quant) model, so
the manager is prepared before the statement that builds it (`statement_to_prepare_before`),
and a copy held by a bare name is rebound after training (`ema = cm.converted_copy(ema)`). That call needs the manager and the copy both bound: right after the
copy is built when the manager exists by then, else next to `prepare_compression`
when the copy is bound on every path there (built at the top level of the function,
or given a default such as `model_ema = None` first), or under the same test when the
copy is built only under a flag nothing changes in between (diffusers' `if
args.use_ema: ema_unet = EMAModel(unet.parameters(), ...)`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import libcst as cst

from neural_coder.analysis.averaging_updates import averaging_update
from neural_coder.analysis.expressions import free_names, unwrap
from neural_coder.analysis.index import (
    BRANCHING,
    Index,
    Scope,
    unconditional,
    unwrap_pass_through,
)
from neural_coder.analysis.pretrained import flag_off_by_default
from neural_coder.analysis.source import Source
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

#: beyond `index.BRANCHING`: a `match` case, and a function or class defined in the scope
_ALSO_CONDITIONAL = (cst.Match, cst.ClassDef, cst.FunctionDef)


@dataclass
class CopyTracking:
    holder: str  # the script's name for the copy (or the object holding it): "ema"
    line: int  # where the copy is built
    after: cst.BaseStatement | None  # insert after this statement; None: with the prepare
    guard: str | None = None  # with the prepare: only under this test, as the copy is built


@dataclass
class MovingAverage:
    """A copy found by `ema_copy`, with what `refuse_an_averaged_copy` needs."""

    call: cst.Call
    model: str
    scope: Scope  # where the manager is prepared
    what: str  # the techniques that would leave it uncompressed: "pruning and ..."

    def refuse(self, index: Index) -> str | None:
        return refuse_an_averaged_copy(index, self.call, self.model, self.what)


EMA_NAMES = ("ema", "averagedmodel", "movingaverage")


def ema_copy(
    index: Index,
    model: str,
    scope: Scope,
    before_line: int,
    participants: Collection[str] = (),
) -> cst.Call | None:
    """A second set of weights averaged from the model's, built in `scope` before
    training: `ema = ModelEMA(model)` (YOLOv5, timm's ModelEma*, torch's AveragedModel),
    `EMAModel(model.parameters())` (diffusers, torch_ema), an averaging class whose
    object is stepped with the model (`ema_unet.step(unet.parameters())`, when the copy is
    built from a second instance of the model), or `ema = copy.deepcopy(model)` whose
    weights the script averages from the model's itself (`averaging_updates.py`), unless
    the training step runs it (`participants`: a teacher or target network that follows
    the student, as in DINO, BYOL or DDPG, is part of training, not its result)."""
    src = index.source
    for call in index.calls:
        name = index.qualified(call.func)
        deep_copy = name == "copy.deepcopy"
        short = name.rsplit(".", 1)[-1].lower()
        if not (deep_copy or any(word in short for word in EMA_NAMES)) or not call.args:
            continue
        built_in = index.scope_of(call)
        if not (
            (built_in is scope and src.line(call) < before_line)
            or _method_of_the_class(index, built_in, scope)
        ):
            continue
        statement = _statement_of(index, call)
        holder = _assigned_name(src, statement, call) if statement is not None else None
        if deep_copy:
            if (
                holder is not None
                and holder not in participants
                and _copies(index, call, model, built_in)
                and averaging_update(index, holder, model) is not None
            ):
                return call
            continue
        if _model_of(src, call.args[0].value) == model:
            return call
        if holder is not None and _stepped_with(index, holder, model):
            return call
    return None


def _copies(index: Index, call: cst.Call, model: str, built_in: Scope) -> bool:
    """`deepcopy(model)`, or in a method, `deepcopy(net)` of the parameter it keeps as
    `model` (`self.model = net; self.ema = deepcopy(net)` in `__init__`)."""
    argument = _model_of(index.source, call.args[0].value)
    if argument == model:
        return True
    fn = index.function(built_in)
    return (
        fn is not None and model.startswith("self.") and argument in index.params_kept_as(fn, model)
    )


def _method_of_the_class(index: Index, method: Scope, scope: Scope) -> bool:
    """`method` is another method of the class `scope` is a method of."""
    cls = index.class_of(scope) if method is not scope else None
    return cls is not None and isinstance(method, cst.FunctionDef) and index.class_of(method) is cls


def _method_run_before(index: Index, method: Scope, scope: Scope, before_line: int) -> bool:
    """`method` is a method of the class `scope` is a method of, and has run before
    `before_line` of `scope`: it is the class's `__init__`, or `scope` calls it
    (`self._setup_train()`) before that line, outside any branch or loop."""
    if not _method_of_the_class(index, method, scope):
        return False
    assert isinstance(method, cst.FunctionDef)
    if method.name.value == "__init__":
        return True
    src = index.source
    return any(
        isinstance(call.func, cst.Attribute)
        and src.code(call.func) == f"self.{method.name.value}"
        and index.scope_of(call) is scope
        and src.line(call) < before_line
        and unconditional(index, call, scope, _ALSO_CONDITIONAL)
        for call in index.calls
    )


def _model_of(src: Source, argument: cst.BaseExpression) -> str:
    """`model` for `model` and `model.parameters()`."""
    value = unwrap(argument)
    if (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == "parameters"
        and not value.args
    ):
        value = value.func.value
    return src.code(value)


def _stepped_with(index: Index, holder: str, model: str) -> bool:
    """Somewhere `holder.<method>(model)` or `holder.<method>(model.parameters())`."""
    src = index.source
    return any(
        isinstance(call.func, cst.Attribute)
        and call.args
        and src.code(call.func.value) == holder
        and _model_of(src, call.args[0].value) == model
        for call in index.calls
    )


def refuse_an_averaged_copy(index: Index, call: cst.Call, model: str, what: str) -> str | None:
    """The copy `call` makes is what such scripts evaluate and save, and the compression
    hooks act on the model only: refused, or a warning (returned) when a command-line
    flag that is off by default builds it."""
    src = index.source
    flag = next(
        (
            found
            for node in src.ancestors(call)
            if isinstance(node, cst.If)
            and any(a is node.body for a in src.ancestors(call))  # not on its `else` path
            and (found := flag_off_by_default(index, node.test))
        ),
        None,
    )
    why = (
        f"{src.code(call.func)}({src.code(call.args[0].value)}) at line {src.line(call)} "
        "keeps a moving average of "
        f"{model}'s weights in a copy of its own, and {what} acts on {model} only: the "
        "averaged copy, which such scripts evaluate and save, would not be compressed"
    )
    if flag is not None:
        return f"line {src.line(call)}: with {flag}, {why}; run without {flag}"
    raise AnalysisError(
        why,
        path=src.path,
        line=src.line(call),
        hint=f"train without the moving average (evaluate and save {model} itself), then run "
        "again; distillation works with it as it is",
    )


def copy_tracking(
    index: Index, call: cst.Call, anchor: cst.CSTNode, scope: Scope
) -> CopyTracking | None:
    """Where `cm.track_copy(<holder>)` goes for the copy that `call` builds, with the
    manager prepared before `anchor` in `scope`; None when no place has both bound."""
    src = index.source
    statement = _statement_of(index, call)
    holder = _assigned_name(src, statement, call) if statement is not None else None
    if statement is None or holder is None:
        return None
    line = src.line(statement)
    built_in = index.scope_of(statement)
    if built_in is not scope:  # in a method of the class that ran before training
        if (
            holder.startswith("self.")
            and _method_run_before(index, built_in, scope, src.line(anchor))
            and _bound_on_every_path(index, holder, statement, built_in)
        ):
            return CopyTracking(holder, line, None)
        return None
    if line >= src.line(anchor):  # built after the prepare (or QAT prepares before it)
        if unconditional(index, anchor, scope, _ALSO_CONDITIONAL):
            return CopyTracking(holder, line, statement)
        return None
    if _bound_on_every_path(index, holder, statement, scope):
        return CopyTracking(holder, line, None)
    guard = _flag_test(index, statement, anchor, scope)
    return CopyTracking(holder, line, None, src.code(guard)) if guard is not None else None


def statement_to_prepare_before(
    index: Index, call: cst.Call, anchor: cst.CSTNode, scope: Scope
) -> tuple[cst.BaseStatement, cst.BaseStatement] | None:
    """QAT: (the statement that builds the copy `call` makes, or the `if args.model_ema:`
    around it; the statement of the same block that holds `anchor`, itself or the `with` /
    `try` around it) when the copy is built before `anchor`; (anchor, anchor) when it is
    built after it; None when no place before the copy has the manager (the copy is built
    in another block or in the loop's header, or `anchor` is in a loop or a branch)."""
    src = index.source
    statement = _statement_of(index, call)
    if statement is None or index.scope_of(statement) is not scope:
        return None
    if src.line(statement) > src.line(anchor):
        return (anchor, anchor) if isinstance(anchor, cst.BaseStatement) else None
    builds = [statement, *src.ancestors(statement)]
    outer: cst.CSTNode | None = anchor
    while outer is not None and outer is not scope:
        body = getattr(src.parent(outer), "body", None)
        if isinstance(body, list | tuple) and outer in body:
            host = next((a for a in builds if a in body), None)
            if isinstance(host, cst.BaseStatement) and isinstance(outer, cst.BaseStatement):
                return (host, outer) if host is not outer else None
        outer = src.parent(outer)
        if not isinstance(outer, _BLOCKS):
            return None
    return None


#: what the prepare may move out of to reach the block that builds the copy
_BLOCKS = (cst.IndentedBlock, cst.With, cst.Try, cst.TryStar, cst.Finally)


def _bound_on_every_path(
    index: Index, holder: str, statement: cst.BaseStatement, scope: Scope
) -> bool:
    """`holder` has a value after `statement` however `scope` ran: `statement` is not in
    a branch, or an earlier unconditional assignment gave it one (`model_ema = None`)."""
    src = index.source
    line = src.line(statement)
    return unconditional(index, statement, scope, _ALSO_CONDITIONAL) or any(
        src.line(a.statement) < line and unconditional(index, a.statement, scope, _ALSO_CONDITIONAL)
        for a in index.assignments_in(holder, scope)
    )


def _flag_test(
    index: Index, statement: cst.BaseStatement, anchor: cst.CSTNode, scope: Scope
) -> cst.BaseExpression | None:
    """The test of the one `if` (itself unconditional) whose body builds the copy, when
    it reads names only (no call) that nothing assigns again before `anchor`."""
    src = index.source
    branch = next(
        (a for a in src.ancestors(statement) if isinstance(a, BRANCHING + _ALSO_CONDITIONAL)), None
    )
    if not isinstance(branch, cst.If) or not unconditional(index, branch, scope, _ALSO_CONDITIONAL):
        return None
    if branch.orelse is not None and any(a is branch.orelse for a in src.ancestors(statement)):
        return None  # built on the `else` path
    test = branch.test
    if m.findall(test, m.Call()):
        return None
    start, end = src.line(branch), src.line(anchor)
    for name in free_names(test) | {src.code(test)}:
        if any(start < src.line(a.statement) < end for a in index.assignments_in(name, scope)):
            return None
    return test


def averaged_copy_name(index: Index, call: cst.Call) -> str | None:
    """The name the copy `call` builds is bound to (`model_ema`, `self.ema`), if any."""
    statement = _statement_of(index, call)
    return _assigned_name(index.source, statement, call) if statement is not None else None


#: where the averaging classes of libraries keep their copy of the model
_LIBRARY_COPIES = {
    "torch.optim.swa_utils.AveragedModel": "module",
    "ModelEmaV2": "module",
    "ModelEmaV3": "module",
    "ModelEma": "ema",  # timm's first version
    "ModelEMA": "ema",  # YOLOv5, ultralytics
}


def averaged_module(index: Index, call: cst.Call, holder: str) -> str | None:
    """The module that holds the averaged weights of the copy `call` builds into `holder`:
    `holder` itself for `holder = copy.deepcopy(model)`, `holder.<attribute>` for a class
    whose `__init__` keeps `self.<attribute> = deepcopy(model)` (or a library's averaging
    class: AveragedModel's and timm's `.module`, YOLOv5's `.ema`); None when it cannot be
    told (diffusers' EMAModel keeps a list of tensors)."""
    name = index.qualified(call.func)
    if name == "copy.deepcopy":
        return holder
    init = index.resolve_call(call)
    if init is not None and init.name == "__init__":
        for statement in m.findall(init.node, m.SimpleStatementLine()):
            small = statement.body[0]  # type: ignore[attr-defined]
            if not isinstance(small, cst.Assign) or len(small.targets) != 1:
                continue
            target, value = small.targets[0].target, unwrap_pass_through(small.value)
            if (
                isinstance(value, cst.Call)
                and index.qualified(value.func) == "copy.deepcopy"
                and m.matches(target, m.Attribute(value=m.Name("self")))
            ):
                return f"{holder}.{target.attr.value}"  # type: ignore[attr-defined]
        return None
    attribute = _LIBRARY_COPIES.get(name) or _LIBRARY_COPIES.get(name.rsplit(".", 1)[-1])
    return f"{holder}.{attribute}" if attribute is not None else None


def _statement_of(index: Index, call: cst.Call) -> cst.SimpleStatementLine | None:
    """The line of `call`, unless it sits in a compound statement's header."""
    statement = index.source.statement_of(call)
    return statement if isinstance(statement, cst.SimpleStatementLine) else None


def _assigned_name(src: Source, statement: cst.SimpleStatementLine, call: cst.Call) -> str | None:
    """`ema = ModelEMA(model)`, `ema = ModelEMA(model) if main else None`, `self.ema = ...`,
    `ema = deepcopy(model).eval()`."""
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target, value = small.targets[0].target, small.value
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        target, value = small.target, small.value
    else:
        return None
    if isinstance(value, cst.IfExp) and (value.body is call or value.orelse is call):
        value = call
    if unwrap_pass_through(value) is call:  # `deepcopy(model).eval()`
        value = call
    if value is not call or not isinstance(target, cst.Name | cst.Attribute):
        return None
    return src.code(target)
