"""Which of several models a training loop trains, and which one teaches.

Teacher-student scripts call two models before the loss. The trained one is the
model whose parameters the optimizer updates (`SGD(student.parameters())`, param
groups, an `nn.ModuleList` of trainable parts); a model run under `torch.no_grad()`
(or not updated by the optimizer) is a teacher, not a second model to compress.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds
from .expressions import is_dotted_name
from .index import Index, Scope
from .source import Source
from .steps import MANUAL_UPDATE
from .wraps import values_through_wraps

NO_GRAD = ("no_grad", "inference_mode")
PARAMETER_METHODS = ("parameters", "named_parameters")
CONTAINER_ADDS = ("append", "extend", "add_module")


@dataclass
class Roles:
    trained: list[cst.Call]  # the calls of the model to compress
    teachers: list[cst.Call]  # the calls of a frozen model (one callee)


def split_roles(index: Index, calls: list[cst.Call], scope: Scope, optimizer: str) -> Roles | None:
    """The calls of the trained model and of the teacher, or None when it cannot be
    told: the trained model is the one `optimizer` updates, and every other model must
    be frozen (no optimizer of the file updates it, it runs under no_grad, or the
    script turns its gradients off). Two models that optimizers update (a GAN's
    generator and discriminator) are ambiguous. When what `optimizer` updates cannot be
    read (a factory of another library builds it), the one model the script does not
    freeze is the trained one."""
    src = index.source
    updated = optimized_leaves(index, optimizer, scope)
    trained = [c for c in calls if _leaf_ids(index, c.func, scope) & updated]
    frozen = frozen_leaves(index)
    if not trained:
        trained = [c for c in calls if not explicitly_frozen(index, c, scope, frozen)]
    if len({src.code(c.func) for c in trained}) != 1:
        return None
    others = [c for c in calls if src.code(c.func) != src.code(trained[0].func)]
    every_updated = all_optimized_leaves(index)
    if not all(
        explicitly_frozen(index, c, scope, frozen)
        or not (_leaf_ids(index, c.func, scope) & every_updated)
        for c in others
    ):
        return None
    teachers = others if len({src.code(c.func) for c in others}) == 1 else []
    return Roles(trained, teachers)


def trains_no_model(index: Index, calls: list[cst.Call], scope: Scope, optimizer: str) -> bool:
    """Every model the step calls is frozen and `optimizer` updates none of them: the
    loop trains auxiliary modules only (a connector warm-up before distillation)."""
    updated = optimized_leaves(index, optimizer, scope)
    if not updated or not calls:
        return False
    frozen = frozen_leaves(index)
    return all(
        explicitly_frozen(index, c, scope, frozen)
        and not (_leaf_ids(index, c.func, scope) & updated)
        for c in calls
    )


def explicitly_frozen(index: Index, call: cst.Call, scope: Scope, frozen: set[int]) -> bool:
    """The model `call` runs gets no gradients: the call is under no_grad, or the
    script turns the model's gradients off (`for p in teacher.parameters():
    p.requires_grad = False`, `teacher.requires_grad_(False)`), or puts it in eval mode
    before the call in the same function (`teacher.eval()`, with no `.train()` between).
    `frozen` is `frozen_leaves(index)`."""
    if under_no_grad(index, call):
        return True
    leaves = _leaf_ids(index, call.func, scope)
    if leaves & frozen:
        return True
    return _in_eval_mode_at(index, call, scope)


def frozen_leaves(index: Index) -> set[int]:
    """The models whose gradients the script turns off, anywhere in the project."""
    src = index.source
    ids: set[int] = set()
    for call in index.calls:
        func = call.func
        if not isinstance(func, cst.Attribute):
            continue
        scope = index.scope_of(call)
        if (
            func.attr.value == "requires_grad_"
            and call.args
            and src.code(call.args[0].value) == "False"
        ):
            ids |= _leaf_ids(index, func.value, scope)
        elif func.attr.value in PARAMETER_METHODS:
            loop = src.parent(call)
            if isinstance(loop, cst.For) and loop.iter is call:
                if _turns_off_gradients(src, loop, _loop_parameter_name(loop.target)):
                    ids |= _leaf_ids(index, func.value, scope)
    for call in index.calls:  # `for p_s, p_t in zip(s.parameters(), t.parameters()):`
        if not (isinstance(call.func, cst.Name) and call.func.value == "zip"):
            continue
        loop = src.parent(call)
        if not (isinstance(loop, cst.For) and loop.iter is call):
            continue
        if not isinstance(loop.target, cst.Tuple) or len(loop.target.elements) != len(call.args):
            continue
        for element, arg in zip(loop.target.elements, call.args):
            inner = arg.value
            if (
                isinstance(element.value, cst.Name)
                and m.matches(inner, m.Call(func=m.Attribute(attr=m.Name("parameters"))))
                and _turns_off_gradients(src, loop, element.value.value)
            ):
                ids |= _leaf_ids(index, inner.func.value, index.scope_of(call))  # type: ignore[attr-defined]
    return ids


def _loop_parameter_name(target: cst.BaseExpression) -> str | None:
    """`p` of `for p in m.parameters()` or of `for name, p in m.named_parameters()`."""
    if isinstance(target, cst.Tuple) and target.elements:
        target = target.elements[-1].value
    return target.value if isinstance(target, cst.Name) else None


def _turns_off_gradients(src: Source, loop: cst.For, name: str | None) -> bool:
    """The loop's body sets `name.requires_grad = False` (or calls
    `name.requires_grad_(False)`) unconditionally: not only for some parameters."""
    if name is None or not isinstance(loop.body, cst.IndentedBlock):
        return False
    for statement in loop.body.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Assign) and src.code(small.value) == "False":
                if any(src.code(t.target) == f"{name}.requires_grad" for t in small.targets):
                    return True
            if isinstance(small, cst.Expr) and m.matches(
                small.value,
                m.Call(func=m.Attribute(value=m.Name(name), attr=m.Name("requires_grad_"))),
            ):
                args = small.value.args  # type: ignore[attr-defined]
                if args and src.code(args[0].value) == "False":
                    return True
    return False


def _in_eval_mode_at(index: Index, call: cst.Call, scope: Scope) -> bool:
    """`teacher.eval()` earlier in the function of `call`, with no `teacher.train()` after it."""
    src = index.source
    callee = src.code(call.func)
    line = src.line(call)
    modes = [
        (src.line(c), _mode(src, c))
        for c in index.calls
        if isinstance(c.func, cst.Attribute)
        and c.func.attr.value in ("eval", "train")
        and src.code(c.func.value) == callee
        and index.scope_of(c) is scope
        and src.line(c) < line
    ]
    if not modes:
        return False
    return max(modes)[1] == "eval"


def _mode(src: Source, call: cst.Call) -> str:
    """ "eval" for `m.eval()` and `m.train(False)`, else "train"."""
    method = call.func.attr.value  # type: ignore[attr-defined]
    if method == "train" and call.args and src.code(call.args[0].value) == "False":
        return "eval"
    return method


def all_optimized_leaves(index: Index) -> set[int]:
    """The models any optimizer built in the file updates."""
    ids: set[int] = set()
    for call in index.calls:
        if kinds.is_optimizer(index, call):
            ids |= _updated_by(index, call, index.scope_of(call))
    return ids


def under_no_grad(index: Index, node: cst.CSTNode) -> bool:
    """`node` runs inside `with torch.no_grad():` (or `inference_mode`)."""
    for ancestor in index.source.ancestors(node):
        if isinstance(ancestor, cst.With):
            for item in ancestor.items:
                call = item.item
                if isinstance(call, cst.Call) and index.qualified(call.func).endswith(NO_GRAD):
                    return True
        if isinstance(ancestor, cst.FunctionDef):
            return any(
                index.qualified(
                    d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator
                ).endswith(NO_GRAD)
                for d in ancestor.decorators
            )
    return False


def optimized_leaves(index: Index, optimizer: str, scope: Scope) -> set[int]:
    """The models (as leaves of `Index.values_of`) whose parameters `optimizer` updates:
    an optimizer's expression, or a step's description `manual update of <params>`
    (`for p in model.parameters(): p.data.add_(...)`, no optimizer at all)."""
    if optimizer.startswith(MANUAL_UPDATE):
        params = cst.parse_expression(optimizer.removeprefix(MANUAL_UPDATE))
        return _owners_of(index, params, scope)
    ids: set[int] = set()
    for leaf, where in index.values_of(cst.parse_expression(optimizer), scope):
        if isinstance(leaf, cst.Call):
            ids |= _updated_by(index, leaf, where)
    return ids


def updated_models(index: Index, optimizer: str, scope: Scope) -> set[str]:
    """`policy` of `optimizer = Adam(policy.parameters(), ...)`: the models, as written
    where the optimizer is built, whose `.parameters()` the optimizer `optimizer` (an
    expression valid in `scope`) is given."""
    found: set[str] = set()
    for leaf, where in index.values_of(cst.parse_expression(optimizer), scope):
        if isinstance(leaf, cst.Call) and kinds.is_optimizer(index, leaf) and leaf.args:
            params = next(
                (a for a in leaf.args if a.keyword and a.keyword.value == "params"), leaf.args[0]
            ).value
            found |= {
                index.source.code(owner)
                for owner in _parameter_owners(index, params, where, depth=0)
                if is_dotted_name(owner)
            }
    return found


def _updated_by(index: Index, construction: cst.Call, scope: Scope) -> set[int]:
    """The models whose parameters the optimizer built by `construction` updates."""
    if not construction.args:
        return set()
    params: cst.BaseExpression = next(
        (a for a in construction.args if a.keyword and a.keyword.value == "params"),
        construction.args[0],
    ).value
    if not kinds.is_optimizer(index, construction):
        params = construction  # a factory: `create_optimizer(args, model)`
    return _owners_of(index, params, scope)


def _owners_of(index: Index, params: cst.BaseExpression, scope: Scope) -> set[int]:
    """The models whose parameters the expression `params` holds."""
    ids: set[int] = set()
    for owner in _parameter_owners(index, params, scope, depth=0):
        ids |= _leaf_ids(index, owner, scope)
        ids |= _container_members(index, owner, scope)
        # `encoder.linear.parameters()`: a part of `encoder` trains, so `encoder` is no
        # frozen model (a captioning encoder whose head is trained with the decoder)
        while isinstance(owner, cst.Attribute):
            owner = owner.value
            ids |= _leaf_ids(index, owner, scope)
    return ids


def _parameter_owners(
    index: Index, expr: cst.BaseExpression, scope: Scope, depth: int
) -> list[cst.BaseExpression]:
    """`X` of every `X.parameters()` that `expr` reads, and each model a helper that
    builds parameter groups is given (`get_params_groups(student)`,
    `param_groups_weight_decay(model, wd)`), following names one level."""
    owners: list[cst.BaseExpression] = []
    for call in m.findall(expr, m.Call()):
        func = call.func  # type: ignore[attr-defined]
        if m.matches(func, m.Attribute(attr=m.OneOf(*map(m.Name, PARAMETER_METHODS)))):
            owners.append(func.value)
        else:
            owners += [
                a.value
                for a in call.args  # type: ignore[attr-defined]
                if not a.star and _holds_model(index, a.value, scope)
            ]
    if depth < 2:
        for name in m.findall(expr, m.Name()):
            for a in index.assignments_in(name.value, scope):  # type: ignore[union-attr]
                owners += _parameter_owners(index, a.value, scope, depth + 1)
    return owners


def _holds_model(index: Index, expr: cst.BaseExpression, scope: Scope) -> bool:
    """`expr` names a model: a model construction reaches it, or it is named like one."""
    if not is_dotted_name(expr):
        return False
    if any(
        kinds.model_kind(index, leaf) is not None
        for leaf, _ in values_through_wraps(index, expr, scope)
    ):
        return True
    return kinds.names_a_model(index.source.code(expr))


def _container_members(index: Index, owner: cst.BaseExpression, scope: Scope) -> set[int]:
    """Models put in a container whose parameters are optimized
    (`trainable = nn.ModuleList([student]); trainable.append(adapter)`)."""
    src = index.source
    text = src.code(owner)
    ids: set[int] = set()
    members: list[cst.BaseExpression] = []
    for a in index.assignments_in(text, scope):
        if isinstance(a.value, cst.Call) and a.value.args:
            members += [e.value for e in m.findall(a.value.args[0], m.Element())]  # type: ignore[union-attr]
    for call in index.calls:
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in CONTAINER_ADDS
            and src.code(func.value) == text
            and call.args
        ):
            members.append(call.args[-1].value)
    for member in members:
        ids |= _leaf_ids(index, member, scope)
    return ids


def _leaf_ids(index: Index, expr: cst.BaseExpression, scope: Scope) -> set[int]:
    return {id(leaf) for leaf, _ in values_through_wraps(index, expr, scope)}
