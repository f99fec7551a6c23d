"""Evaluation: a function of the file that takes the model and returns a metric,
and the first place the script calls it (or otherwise uses the model).

Post-training approaches insert their `fit` call before that place, and build
`eval_func` from that call.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds
from .expressions import free_names, root_name
from .held_out import held_out_key, names_read_from_scope
from .index import Function, Index, Scope, iter_returns


@dataclass
class Evaluation:
    call: cst.Call  # e.g. evaluate(model, val_loader)
    function: Function
    model_param: str  # the parameter that receives the model
    model_arg: str  # the argument passed for it at the call, e.g. "model"
    statement: cst.BaseStatement
    scope: Scope
    # the key of the held-out split in the dict it returns (`estimate_loss()["val"]`)
    key: str | None = None
    # the function reads the model from the scope of the call (`model_param` is that
    # name, not a parameter): a candidate is evaluated by binding the name to it
    reads_model: bool = False


@dataclass
class ModelUse:
    """The model to quantize: where it is built and the loaders in sight."""

    name: str
    statement: cst.BaseStatement  # its (last) assignment before use
    scope: Scope
    loaders: list[str]  # data loaders assigned in the same scope, in order


LOWER_IS_BETTER = ("loss", "error", "wer", "cer", "perplexity", "ppl", "distance", "mse", "mae")
# what a function returns when it hands back predictions or outputs, not a metric
COLLECTIONS = (cst.List, cst.ListComp, cst.Dict, cst.DictComp, cst.GeneratorExp)
TENSOR_BUILDERS = frozenset(
    {"torch.cat", "torch.stack", "torch.concat", "torch.tensor"}
    # numpy as written (`np.`) and as `Index.qualified` expands `import numpy as np`
    | {
        f"{lib}.{fn}"
        for lib in ("np", "numpy")
        for fn in ("array", "concatenate", "vstack", "hstack", "stack")
    }
    | {
        f"{lib}.{fn}"
        for lib in ("torch", "np", "numpy")
        for fn in ("zeros", "empty", "ones", "full")
    }
)
#: methods that hand back the same predictions in another form (`torch.cat(p).cpu().numpy()`)
_CONVERSIONS = frozenset(
    {"numpy", "cpu", "detach", "tolist", "flatten", "squeeze", "reshape", "view"}
)
CONTAINER_BUILDERS = frozenset({"dict", "OrderedDict", "defaultdict", "list", "tuple", "set"})
# what a function that prepares or collects data is called; it returns no metric
NOT_METRIC_PREFIXES = (
    "prepare_", "build_", "make_", "create_", "load_", "extract_", "collate", "preprocess",
    "tokenize", "encode", "decode", "generate", "sample", "predict", "infer", "get_",
)  # fmt: skip
# methods of a module that read or change its state without running it on data
STATE_METHODS = frozenset(
    {
        "parameters", "named_parameters", "buffers", "named_buffers", "modules",
        "named_modules", "children", "named_children", "state_dict", "load_state_dict",
        "zero_grad", "train", "eval", "to", "cuda", "cpu", "apply", "requires_grad_",
        "save_pretrained", "half", "float", "register_forward_hook",
    }
)  # fmt: skip


def higher_is_better(metric: str) -> bool:
    """What a metric's name says: a loss, an error rate, a perplexity go down."""
    return not any(word in metric.lower() for word in LOWER_IS_BETTER)


#: classes whose instances are numbers a tuner can read
NUMBER_CLASSES = frozenset({"Tensor", "FloatTensor", "Decimal", "Fraction"})


def returns_metric(index: Index, fn: Function) -> bool:
    """Returns a value, and none of its returns is a collection of predictions
    (`torch.cat(preds)`, `[...]`, a list that is appended to)."""
    values = [r.value for r in iter_returns(fn.node) if r.value is not None]
    if not values or all(_is_none(v) for v in values):
        return False
    return not any(_is_collection(index, fn, v) or _is_built_object(index, fn, v) for v in values)


def _is_built_object(
    index: Index, fn: Function, value: cst.BaseExpression, seen: frozenset[str] = frozenset()
) -> bool:
    """An instance of a class the function builds (`coco_evaluator = CocoEvaluator(...)`;
    `return coco_evaluator`, a meter object): an evaluator, not a number."""
    if isinstance(value, cst.Call):
        name = index.source.code(value.func).rsplit(".", 1)[-1]
        return name[:1].isupper() and name not in NUMBER_CLASSES
    if isinstance(value, cst.Name) and value.value not in seen:
        assigned = index.assignments_in(value.value, fn.node)
        return bool(assigned) and all(
            _is_built_object(index, fn, a.value, seen | {value.value}) for a in assigned
        )
    return False


def _is_collection(
    index: Index, fn: Function, value: cst.BaseExpression, seen: frozenset[str] = frozenset()
) -> bool:
    if isinstance(value, COLLECTIONS):
        return True
    if isinstance(value, cst.Call):
        func = value.func
        if isinstance(func, cst.Attribute) and func.attr.value in _CONVERSIONS:
            return _is_collection(index, fn, func.value, seen)
        name = index.qualified(func)
        return name in TENSOR_BUILDERS or name.rsplit(".", 1)[-1] in CONTAINER_BUILDERS
    if isinstance(value, cst.Name) and value.value not in seen:  # `a = b; b = a` ends
        return any(
            _is_collection(index, fn, a.value, seen | {value.value})
            for a in index.assignments_in(value.value, fn.node)
        )
    return False


def is_evaluation(index: Index, fn: Function, model_param: str) -> bool:
    """`fn` measures the model: it runs the model on data (calls it, or hands it on),
    and trains nothing. A training epoch that returns its loss, or a regularizer over
    `model.parameters()`, returns a number too, but is no evaluation."""
    if fn.name.lstrip("_").startswith(NOT_METRIC_PREFIXES):
        return False
    if returns_the_model(fn, model_param):
        return False
    return runs_model(index, fn, model_param) and not trains(index, fn)


def returns_the_model(fn: Function, model_param: str) -> bool:
    """Every return hands the model back (`return model`, `return model.module`): an
    unwrap or set-up helper such as `unwrap_model(model)`, which measures nothing."""
    values = [r.value for r in iter_returns(fn.node) if r.value is not None]
    return bool(values) and all(root_name(v) == model_param for v in values)


def runs_model(index: Index, fn: Function, model_param: str, depth: int = 0) -> bool:
    """`fn` calls its `model_param` (or a method of it that is no state access), or hands
    it to a function that does; tensor maths (`torch.mm(features, x)`) is no model run."""
    for call in m.findall(fn.node, m.Call()):
        func = call.func  # type: ignore[attr-defined]
        if m.matches(func, m.Name(model_param)):
            return True
        if m.matches(func, m.Attribute(value=m.Name(model_param))):
            if func.attr.value not in STATE_METHODS:
                return True
            continue
        if not any(m.matches(a.value, m.Name(model_param)) for a in call.args):  # type: ignore[attr-defined]
            continue
        callee = index.resolve_call(call)  # type: ignore[arg-type]
        if callee is not None:
            bound = [
                p
                for p, v in index.bind_arguments(call, callee).items()  # type: ignore[arg-type]
                if m.matches(v, m.Name(model_param))
            ]
            if depth < 4 and any(runs_model(index, callee, p, depth + 1) for p in bound):
                return True
        elif not _is_tensor_maths(index.qualified(func)):
            return True  # a library function given the model: it may run it
    return False


def _is_tensor_maths(name: str) -> bool:
    return name in dir(builtins) or name.startswith(
        ("torch.", "np.", "numpy.", "math.", "F.", "nn.functional.", "scipy.")
    )


def trains(index: Index, fn: Function, seen: frozenset[int] = frozenset()) -> bool:
    """`fn` (or a function of the project it calls) runs a backward pass, steps or zeroes
    an optimizer, or hands an optimizer to a library call that does (timm's
    `loss_scaler(loss, optimizer, ...)` runs the backward and the step)."""
    if id(fn.node) in seen:
        return False
    for call in m.findall(fn.node, m.Call(func=m.Attribute())):
        attr = call.func.attr.value  # type: ignore[attr-defined]
        if attr in ("backward", "manual_backward"):
            return True
        if attr in ("step", "zero_grad") and _is_optimizer(index, call.func.value, fn):  # type: ignore[attr-defined]
            return True
    for call in m.findall(fn.node, m.Call()):
        callee = index.resolve_call(call)  # type: ignore[arg-type]
        if callee is not None and callee is not fn and trains(index, callee, seen | {id(fn.node)}):
            return True
        if callee is None and any(
            not a.keyword and _is_optimizer(index, a.value, fn)
            for a in call.args  # type: ignore[attr-defined]
        ):
            return True
    return False


def _is_optimizer(index: Index, receiver: cst.BaseExpression, fn: Function) -> bool:
    if "optim" in index.source.code(receiver).lower():
        return True
    return any(kinds.is_optimizer(index, leaf) for leaf, _ in index.values_of(receiver, fn.node))


#: words that name a metric a tuner maximises: with `LOWER_IS_BETTER`, what makes a
#: returned expression say what it measures on its own
HIGHER_IS_BETTER = ("acc", "top1", "top5", "prec", "recall", "f1", "bleu", "rouge", "auc",
                    "map", "iou", "dice", "score", "correct")  # fmt: skip


def metric_name(
    index: Index, fn: Function, key: str | None = None, statement: cst.CSTNode | None = None
) -> str:
    """The words that say what the tuned value measures. The tuner reads the entry at
    `key` of what `fn` returns, or the first item of a tuple (`return top1, losses`):
    those words when they name a metric, else with `fn`'s name (`estimate_loss()['val']`,
    `def validate(...): return total / n`)."""
    if key is not None:
        return f"{key} {fn.name}"
    tuned = [index.source.code(value) for value in _tuned_values(fn)]
    said = " ".join(tuned)
    if any(word in said.lower() for word in LOWER_IS_BETTER + HIGHER_IS_BETTER):
        return said
    if _sums_a_criterion(index, fn, tuned):
        # `total += F.mse_loss(x_hat, x).item(); return total / n`: a loss, by what it adds
        return " ".join([*tuned, "loss"])
    # `val_loss = validate(...)`, `avg_val_loss, preds = valid_fn(...)`: the name the
    # caller gives the (first) value says what it is when the function does not
    caller = _assigned_name(statement)
    if caller is not None and any(w in caller.lower() for w in LOWER_IS_BETTER + HIGHER_IS_BETTER):
        return caller
    return " ".join([fn.name, *tuned])


def tuned_higher_is_better(
    index: Index, fn: Function, key: str | None = None, statement: cst.CSTNode | None = None
) -> bool:
    """Whether a larger tuned value is better: what `metric_name` says, turned around
    when every return negates what it names (`return -err / n`, `return -total_loss`:
    a negated loss, which goes up as the model gets better)."""
    name = metric_name(index, fn, key, statement)
    better = higher_is_better(name)
    if key is None and all(_negated(value) for value in _tuned_values(fn)):
        return not better
    return better


def _tuned_values(fn: Function) -> list[cst.BaseExpression]:
    values = []
    for returned in iter_returns(fn.node):
        value = returned.value
        if isinstance(value, cst.Tuple) and value.elements:
            value = value.elements[0].value
        if value is not None:
            values.append(value)
    return values


def _negated(value: cst.BaseExpression) -> bool:
    """`-x`, `-x / n`, `-(a + b) * w`: the sign of the leading factor is turned."""
    while isinstance(value, cst.BinaryOperation) and isinstance(
        value.operator, cst.Divide | cst.Multiply | cst.FloorDivide
    ):
        value = value.left
    return isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus)


def returns_a_tuple(fn: Function) -> bool:
    """Every return of `fn` hands back several values (`return top1, seconds`): the
    metric is the first. INC's tuning asserts on a tuple (it takes a scalar or a list)."""
    values = [r.value for r in iter_returns(fn.node)]
    return bool(values) and all(isinstance(v, cst.Tuple) and len(v.elements) > 1 for v in values)


def _assigned_name(statement: cst.CSTNode | None) -> str | None:
    """`val_loss` of `val_loss = f(...)` or of `val_loss, preds = f(...)`."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return None
    assign = statement.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        return None
    target = assign.targets[0].target
    if isinstance(target, cst.Tuple) and target.elements:
        target = target.elements[0].value
    return target.value if isinstance(target, cst.Name) else None


#: criteria whose names say no "loss" (`F.cross_entropy`), beside those that do
CRITERIA = frozenset({"cross_entropy", "binary_cross_entropy", "kl_div", "criterion"})


def _sums_a_criterion(index: Index, fn: Function, returned: list[str]) -> bool:
    """A name `fn` returns (or divides) is assigned or accumulated from a loss
    criterion's value (`F.mse_loss(...)`, `criterion(out, y)`, `loss_fn(...)`,
    `loss.item()`)."""
    names = {n for text in returned for n in _names_in_text(text)}
    seen: set[str] = set()
    assigns = m.findall(fn.node, m.Assign() | m.AugAssign())
    while names - seen:  # `value = total / n` where `total += criterion(...).item()`
        name = (names - seen).pop()
        seen.add(name)
        for small in assigns:
            targets = (
                [t.target for t in small.targets]  # type: ignore[attr-defined]
                if isinstance(small, cst.Assign)
                else [small.target]  # type: ignore[attr-defined]
            )
            if not any(isinstance(t, cst.Name) and t.value == name for t in targets):
                continue
            value = small.value  # type: ignore[attr-defined]
            for call in m.findall(value, m.Call()):
                func = index.source.code(call.func).lower()  # type: ignore[attr-defined]
                if "loss" in func or func.rsplit(".", 1)[-1] in CRITERIA:
                    return True
            names |= {n.value for n in m.findall(value, m.Name())}  # type: ignore[attr-defined]
    return False


def _names_in_text(text: str) -> set[str]:
    try:
        return {n.value for n in m.findall(cst.parse_expression(text), m.Name())}  # type: ignore[attr-defined]
    except cst.ParserSyntaxError:
        return set()


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def is_model_expression(index: Index, expr: cst.BaseExpression, scope: Scope) -> bool:
    """A module: built by a model class or factory, or a `torch.load` that the script
    then uses as a module (a loaded tensor or checkpoint dict is no model)."""
    for leaf, _ in index.values_of(expr, scope):
        kind = kinds.model_kind(index, leaf)
        if kind is None:
            continue
        if index.qualified(leaf.func) != "torch.load":  # type: ignore[attr-defined]
            return True
        if isinstance(expr, cst.Name) and used_as_module(index, expr.value):
            return True
    return False


MODULE_USES = frozenset(
    {"eval", "train", "forward", "generate", "parameters", "named_parameters", "state_dict",
     "load_state_dict", "modules", "named_modules", "children", "zero_grad", "apply"}
)  # fmt: skip


def used_as_module(index: Index, name: str) -> bool:
    """`name` is called, or a module's own method is called on it."""
    module = index.source.module
    return bool(
        m.findall(module, m.Call(func=m.Name(name)))
        or m.findall(
            module,
            m.Call(
                func=m.Attribute(
                    value=m.Name(name), attr=m.OneOf(*(m.Name(u) for u in MODULE_USES))
                )
            ),
        )
    )


def find_evaluations(index: Index, also: Collection[str] = ()) -> list[Evaluation]:
    """Calls of the file's own metric-returning functions with a model argument (or that
    read the model from the scope of the call), in file order; `also`: more expressions
    that are models (a moving average's copy, `ema_model` or `model_ema.module`)."""
    found: list[Evaluation] = []
    for call in index.calls:
        if index.source.module_of(call) is not index.source.module:
            continue  # in a project, the script's own evaluations (of functions of any file)
        fn = index.resolve_call(call)
        if fn is None or fn.cls is not None:
            continue
        key = None if returns_metric(index, fn) else held_out_key(index, fn)
        if key is None and not returns_metric(index, fn):
            continue
        scope = index.scope_of(call)
        statement = index.source.statement_of(call)
        for param, arg in index.bind_arguments(call, fn).items():
            if (
                isinstance(arg, cst.Name | cst.Attribute)
                and (index.source.code(arg) in also or is_model_expression(index, arg, scope))
                and is_evaluation(index, fn, param)
            ):
                code = index.source.code(arg)
                found.append(Evaluation(call, fn, param, code, statement, scope, key))
                break
        else:
            for name in names_read_from_scope(index, fn, scope):
                if is_model_expression(index, cst.Name(name), scope) and is_evaluation(
                    index, fn, name
                ):
                    found.append(Evaluation(call, fn, name, name, statement, scope, key, True))
                    break
    found.sort(key=lambda e: index.source.line(e.call))
    return found


def model_assignment(
    index: Index, name: str, scope: Scope, before_line: int
) -> cst.BaseStatement | None:
    candidates = [
        a
        for a in index.assignments_in(name, scope)
        if index.source.line(a.statement) < before_line
        and is_model_expression(index, a.value, a.scope)
    ]
    return (
        max(candidates, key=lambda a: index.source.line(a.statement)).statement
        if candidates
        else None
    )


def is_checkpoint_dict(index: Index, name: str) -> bool:
    """`name` is read as a dict (`ckpt["model"]`, `ckpt.get(...)`, `.keys()`, `load_state_dict(ckpt)`):
    a `torch.load` of a checkpoint, not of a pickled module."""
    if m.findall(index.source.module, m.Subscript(value=m.Name(name))):
        return True
    dict_methods = m.OneOf(*(m.Name(n) for n in ("get", "keys", "items", "values")))
    if m.findall(
        index.source.module, m.Call(func=m.Attribute(value=m.Name(name), attr=dict_methods))
    ):
        return True
    state_dict_load = m.Call(
        func=m.Attribute(attr=m.Name("load_state_dict")),
        args=[m.Arg(value=m.Name(name)), m.ZeroOrMore()],
    )
    return bool(m.findall(index.source.module, state_dict_load))


def arguments_at(
    index: Index, chosen: Evaluation, scope: Scope, line: int, after: bool
) -> dict[str, str] | None:
    """Whether the arguments of `chosen.call` (but the model) exist at `line` of `scope`:
    {} when they do, {loop variable: value} when a loop variable of the call stands for
    the first item of a literal the loop runs over, None when some name is missing."""
    substitutions: dict[str, str] = {}
    for arg in chosen.call.args:
        if index.source.code(arg.value) == chosen.model_arg:
            continue
        for name in free_names(arg.value):
            if _visible(index, name, scope, line, after) or _loop_bound(
                index, chosen.call, name, line, after
            ):
                continue
            value = _first_loop_item(index, chosen.call, name)
            if value is None:
                return None
            substitutions[name] = value
    return substitutions


def _visible(index: Index, name: str, scope: Scope, line: int, after: bool) -> bool:
    if name in dir(builtins) or name in index.imports or name in index.classes:
        return True
    if any(f.name == name and f.cls is None for f in index.functions.values()):
        return True
    fn = index.function(scope)
    if fn is not None and name in fn.all_params():
        return True
    for a in index.assignments.get(name, []):
        at = index.source.line(a.statement)
        if a.scope is scope and (at < line or (after and at == line)):
            return True
        if a.scope is index.source.module and scope is not index.source.module:
            return True
    return False


def _loop_bound(index: Index, call: cst.Call, name: str, line: int, after: bool) -> bool:
    """`name` is the variable of a `for` loop around `call` (`valid_fn(model, loader,
    epoch)` in the epoch loop) that has started by `line`: inside that loop, or after it
    (a fit after training), the name holds its last value."""
    src = index.source
    scope = index.scope_of(call)
    for loop in src.ancestors(call):
        if loop is scope:
            return False
        if not isinstance(loop, cst.For) or not m.findall(loop.target, m.Name(name)):
            continue
        start = src.line(loop)
        return start < line or (start == line and after)
    return False


def _first_loop_item(index: Index, call: cst.Call, name: str) -> str | None:
    """For `for split, loader in [("val", val_loader), ...]` around `call`: the value
    `name` takes on the first iteration, as written."""
    src = index.source
    for loop in src.ancestors(call):
        if not isinstance(loop, cst.For):
            continue
        items = loop.iter
        if m.matches(items, m.Call(func=m.Attribute(attr=m.Name("items")))) and isinstance(
            items.func.value,
            cst.Dict,  # type: ignore[attr-defined]
        ):
            first = items.func.value.elements[0]  # type: ignore[attr-defined]
            if isinstance(first, cst.DictElement):
                items = cst.Tuple([cst.Element(first.key), cst.Element(first.value)])
                items = cst.List([cst.Element(items)])
        if not isinstance(items, cst.List | cst.Tuple) or not items.elements:
            continue
        first_item = items.elements[0].value
        target = loop.target
        if m.matches(target, m.Name(name)):
            return src.module.code_for_node(first_item)
        if isinstance(target, cst.Tuple | cst.List) and isinstance(
            first_item, cst.Tuple | cst.List
        ):
            for t, v in zip(target.elements, first_item.elements):
                if m.matches(t.value, m.Name(name)):
                    return src.module.code_for_node(v.value)
    return None
