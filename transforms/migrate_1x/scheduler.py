"""`Scheduler()`: `combine` (one shot) and `append` (multi shot).

One shot:

    prune = Pruning("p.yaml")                        prune_conf = WeightPruningConfig(...)
    quantizer = Quantization("qat.yaml")             quantizer_conf = QuantizationAwareTrainingConfig(...)
    scheduler = Scheduler()                    ->    combination = prepare_compression(model, [prune_conf, quantizer_conf])
    scheduler.model = common.Model(model)            combination.callbacks.on_train_begin()
    combination = scheduler.combine(prune, quantizer)   model = combination.model
    combination.train_func = train_func              train_func(model)
    scheduler.append(combination)                    combination.callbacks.on_train_end()
    opt_model = scheduler.fit()                      opt_model = combination.model

Multi shot (`append(a); append(b)`): the 2.x steps in order, each taking the model
the previous one returned (e.g. the pruning block, then `quantization.fit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from . import distillation, pruning, quantization, yaml_map
from .analysis import Component, Use
from .builtin_loop import Training, resolve
from .codegen import code_of
from .manager import Note, Technique, emit_manager, emit_single, fit_uses
from .plan import Attrs, Ctx

NO_HOME: dict[str, str] = {}


@dataclass
class Combination:
    comp: Component | None  # None: `scheduler.combine(...)` written inline
    call: cst.Call
    members: list[Component] = field(default_factory=list)


def combination_of(ctx: Ctx, call: cst.Call, comps: dict[str, Component]) -> Combination | None:
    members = []
    for arg in call.args:
        if not isinstance(arg.value, cst.Name) or arg.value.value not in comps:
            return None
        members.append(comps[arg.value.value])
    return Combination(None, call, members)


def plan(
    ctx: Ctx, sched: Component, comps: dict[str, Component], combos: dict[int, Component]
) -> set[str] | None:
    """Plan the scheduler; returns the names of the components it consumed (None: left as is)."""
    fits = fit_uses(sched)
    if len(fits) != 1:
        ctx.note(
            sched.stmt,
            "TODO",
            f"`{sched.name}`: {'no' if not fits else 'more than one'} fit() call found; the scheduler is left as it is",
        )
        return None
    fit = fits[0]
    steps: list[Component | Combination] = []
    appends = [u for u in sched.uses if u.kind == "call" and u.attr == "append"]
    for use in appends:
        call = use.node
        assert isinstance(call, cst.Call)
        for arg in call.args:
            value = arg.value
            step: Component | Combination | None = None
            if isinstance(value, cst.Name) and value.value in comps:
                step = comps[value.value]
            elif isinstance(value, cst.Call) and id(value) in combos:
                step = combos[id(value)]
            elif (
                isinstance(value, cst.Call)
                and isinstance(value.func, cst.Attribute)
                and value.func.attr.value == "combine"
            ):
                step = combination_of(ctx, value, comps)
            if step is None:
                ctx.note(
                    use.stmt,
                    "TODO",
                    f"`{code_of(value)}` is not a component this tool follows; the scheduler is left as it is",
                )
                return None
            steps.append(step)
    if not steps:
        ctx.note(sched.stmt, "TODO", f"`{sched.name}` has no append(...) step; left as it is")
        return None
    attrs = Attrs(ctx, sched, fit.stmt)
    model = attrs.value("model")
    train = attrs.value("train_func")
    eval_func = attrs.value("eval_func")
    consumed: set[str] = {sched.name}
    current = model
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, Component) and step.kind == "combination":
            step = Combination(
                step,
                step.ctor,
                [
                    comps[a.value.value]
                    for a in step.ctor.args
                    if isinstance(a.value, cst.Name) and a.value.value in comps
                ],
            )
        if isinstance(step, Combination):
            current = _combination(ctx, step, fit, current, train, last)
            consumed.update(m.name for m in step.members)
            if step.comp is not None:
                consumed.add(step.comp.name)
        else:
            current = _single(ctx, step, fit, current, train, eval_func, last)
            consumed.add(step.name)
    for use in appends:
        if (
            isinstance(use.stmt, cst.SimpleStatementLine)
            and len(use.stmt.body) == 1
            and isinstance(use.stmt.body[0], cst.Expr)
        ):
            ctx.remove(use.stmt)
            ctx.handled.add(id(use.node))
    quantization.finish_fit(ctx, fit, current or "model", training=True)
    if eval_func is not None and not any(
        isinstance(s, Component) and s.kind == "quantization" and not _is_qat(ctx, s) for s in steps
    ):
        ctx.note(
            fit.stmt,
            "TODO",
            f"`{sched.name}.eval_func` is not used: 2.x training blocks do not evaluate; call it on the result yourself",
        )
    attrs.finish(NO_HOME)
    return consumed


def _is_qat(ctx: Ctx, comp: Component) -> bool:
    doc = ctx.yaml_for(comp)
    return (yaml_map.quant_approach(doc) if doc is not None else "static") == "qat"


SECTIONS = {"pruning": "pruning", "qat": "quantization", "distillation": "distillation"}


def _techniques(
    ctx: Ctx, member: Component, student: str | None, fit_scope: object
) -> tuple[Technique, list[str], Attrs, distillation.Distill | None] | None:
    doc = ctx.yaml_for(member)
    attrs = Attrs(ctx, member, None)
    if member.kind == "pruning":
        return pruning.technique(ctx, member, doc), [], attrs, None
    if member.kind == "quantization":
        approach = yaml_map.quant_approach(doc) if doc is not None else "static"
        if approach != "qat":
            ctx.note(
                member.stmt,
                "TODO",
                f"`{member.name}` is post-training quantization ({approach}) inside a one-shot combination; 1.x combined quantization-aware training only. Left as it is",
            )
            return None
        return quantization.qat_technique(ctx, member, doc, attrs), [], attrs, None
    if member.kind == "distillation":
        student = student or attrs.value("student_model", "model")
        t, d = distillation.technique(ctx, member, doc, attrs, student)
        distillation.rewrite_reads(
            ctx, member, attrs, d, fit_scope, student, attrs.value("teacher_model")
        )
        return t, d.pre, attrs, d
    ctx.note(
        member.stmt,
        "TODO",
        f"`{member.name}` ({member.kind}) cannot be part of a one-shot combination; left as it is",
    )
    return None


def _member_value(members: list[Attrs], *names: str) -> str | None:
    for attrs in members:
        value = attrs.value(*names)
        if value is not None:
            return value
    return None


def _combination(
    ctx: Ctx, combo: Combination, fit: Use, model: str | None, train: str | None, last: bool
) -> str:
    fit_scope = ctx.a.scope(fit.stmt)
    own = Attrs(ctx, combo.comp, fit.stmt) if combo.comp is not None else None
    if own is not None:
        model = own.value("model") or model
        train = own.value("train_func") or train
    built = [_techniques(ctx, m, model, fit_scope) for m in combo.members]
    techniques = [b[0] for b in built if b is not None]
    member_attrs = [b[2] for b in built if b is not None]
    pre = [line for b in built if b is not None for line in b[1]]
    model = model or _member_value(member_attrs, "model", "student_model")
    train = train or _member_value(member_attrs, "train_func", "q_func", "pruning_func")
    loader = (own.value("train_dataloader") if own is not None else None) or _member_value(
        member_attrs, "train_dataloader"
    )
    manager = combo.comp.name if combo.comp is not None else ctx.names.fresh("compression_manager")
    # one loop for the combination: the first member whose yaml describes one (1.x synced them)
    distill = next((b[3] for b in built if b is not None and b[3] is not None), None)
    found: Training | None = None
    for t, attrs in zip(techniques, member_attrs):
        student_loss = {"CE": "CrossEntropyLoss", "MSE": "MSELoss"}.get(
            str(((distill.loss_types if distill else None) or ["CE"])[0])
        )
        resolved = resolve(
            ctx,
            t.comp,
            ctx.yaml_for(t.comp),
            attrs,
            SECTIONS[t.kind],
            manager,
            train or (found.train if found else None),
            distillation=distill is not None,
            student_loss=student_loss,
            loader=loader,
        )
        t.notes += resolved.notes
        if found is None and resolved.train is not None:
            found = resolved
    group = ([combo.comp] if combo.comp is not None else []) + combo.members
    result = emit_manager(
        ctx,
        manager=manager,
        techniques=techniques,
        group=group,
        model=model,
        train=found.train if found else None,
        fit=fit,
        pre=[*pre, *(found.pre if found else [])] or None,
        pre_notes=found.pre_notes if found else None,
        steps=(found.steps if found else None) or (f"len({loader})" if loader else None),
    )
    for attrs in member_attrs:
        attrs.finish(pruning.NO_HOME)
    if own is not None:
        own.finish(NO_HOME)
    if combo.comp is None:
        ctx.handled.add(id(combo.call))
    return result if last else f"{result}.model"


def _single(
    ctx: Ctx,
    comp: Component,
    fit: Use,
    model: str | None,
    train: str | None,
    eval_func: str | None,
    last: bool,
) -> str | None:
    doc = ctx.yaml_for(comp)
    attrs = Attrs(ctx, comp, fit.stmt)
    model = attrs.value("model", "student_model") or model
    line = ctx.a.line(comp.stmt)
    if (
        comp.kind == "quantization"
        and (yaml_map.quant_approach(doc) if doc is not None else "static") != "qat"
    ):
        approach = yaml_map.quant_approach(doc) if doc is not None else "static"
        given = (
            {"eval_func": eval_func} if eval_func is not None and not attrs.has("eval_func") else {}
        )
        chunk, notes, expr = quantization.ptq_block(
            ctx, comp, doc, attrs, given, approach, fit.stmt, model
        )
        result = expr
        if not last:  # the next step takes the quantized model
            result = ctx.names.fresh(f"{comp.name}_model")
            chunk = [*chunk, f"{result} = {expr}"]
        ctx.before(fit.stmt, ctx.gen(chunk, fit.stmt, notes))
        attrs.finish(quantization.PTQ_NO_HOME)
        return result
    if comp.kind in ("pruning", "distillation", "quantization"):
        fit_scope = ctx.a.scope(fit.stmt)
        pre: list[str] = []
        if comp.kind == "pruning":
            t = pruning.technique(ctx, comp, doc)
            section = "pruning"
        elif comp.kind == "quantization":
            t = quantization.qat_technique(ctx, comp, doc, attrs)
            section = "quantization"
        else:
            t, d = distillation.technique(ctx, comp, doc, attrs, model)
            distillation.rewrite_reads(
                ctx, comp, attrs, d, fit_scope, model, attrs.value("teacher_model")
            )
            pre = d.pre
            section = "distillation"
        own_train = attrs.value("train_func", "q_func", "pruning_func")
        if comp.kind == "distillation":
            training = distillation.training_of(ctx, comp, doc, attrs, d, train or own_train)
        else:
            training = resolve(ctx, comp, doc, attrs, section, comp.name, train or own_train)
        result = emit_single(ctx, comp, fit, t, model, training, pre)
        attrs.finish(pruning.NO_HOME)
        # the next step takes the framework model (what 1.x handed on was the same module)
        return result if last else f"{result}.model"
    notes: list[Note] = [
        (
            "TODO",
            f"`{comp.name}` ({comp.kind}) as a scheduler step is not migrated; run it after the steps above",
            line,
        )
    ]
    ctx.before(fit.stmt, ctx.gen([], fit.stmt, notes))
    return model
