"""`Distillation(yaml)` -> `DistillationConfig` + the `prepare_compression` block.

    distiller = Distillation("d.yaml")                 distiller_conf = DistillationConfig(
    distiller.teacher_model = common.Model(t)              t, KnowledgeDistillationLossConfig(...)
    distiller.student_model = common.Model(s)  ->      )
    distiller.criterion = PyTorchKnowledgeDistillationLoss(...)
    distiller.train_func = train                       distiller = prepare_compression(s, distiller_conf)
    model = distiller.fit()                            ...

Inside the training code: `distiller.on_after_compute_loss(...)` ->
`distiller.callbacks.on_after_compute_loss(...)`; `distiller.criterion(output, target)`
(the student-vs-label loss) -> `torch.nn.functional.cross_entropy` / `mse_loss` per
`loss_types[0]`; `distiller.optimizer` -> the optimizer the code set (or one built
from the yaml `optimizer` section).
"""

from __future__ import annotations

import libcst as cst

from . import yaml_map
from .analysis import Component, Use
from .builtin_loop import Training, resolve, torch_optimizer
from .codegen import render
from .common import convert
from .manager import Note, Technique, emit_single, yaml_notes
from .plan import Attrs, Ctx
from .quantization import conf_name, finish_fit, localize, tuning_lines

STUDENT_LOSS = {"CE": "cross_entropy", "MSE": "mse_loss"}
NO_HOME = {
    "eval_func": "1.x evaluated every epoch and returned the best model; 2.x returns the last one: evaluate and keep the best yourself",
    "eval_dataloader": "2.x distillation does not evaluate",
    "train_dataloader": "INFO: only the 1.x built-in training loop read it, and a train function is set",
}


def criterion_call(ctx: Ctx, node: cst.BaseExpression | None, scope: object) -> cst.Call | None:
    """The PyTorch*DistillationLoss(...) call behind the criterion value (direct or one name away)."""
    if isinstance(node, cst.Call):
        return node
    if isinstance(node, cst.Name):
        bindings = list(scope[node.value])  # type: ignore[index]
        if len(bindings) == 1:
            target = getattr(bindings[0], "node", None)
            assign = ctx.a.parent(ctx.a.parent(target)) if target is not None else None
            if isinstance(assign, cst.Assign) and isinstance(assign.value, cst.Call):
                return assign.value
    return None


class Distill:
    """What the distillation block needs beyond its Technique."""

    def __init__(self) -> None:
        self.loss_types: list[object] | None = None
        self.kind = ""
        self.optimizer: str | None = None  # code of the optimizer, at the fit site
        self.pre: list[str] = []  # lines before prepare_compression (a yaml optimizer)


def technique(
    ctx: Ctx, comp: Component, doc: yaml_map.YamlDoc | None, attrs: Attrs, student: str | None
) -> tuple[Technique, Distill]:
    d = Distill()
    notes = yaml_map.Notes()
    line = ctx.a.line(comp.stmt)
    extra: list[Note] = []
    crit_use = attrs.use("criterion")
    crit_node = criterion_call(
        ctx, crit_use.value if crit_use else None, crit_use.scope if crit_use else comp.scope
    )
    ydist = (
        yaml_map.distillation(doc, notes, criterion_in_code=crit_use is not None)
        if doc is not None
        else None
    )
    criterion: str | None = None
    if crit_use is not None:
        criterion = attrs.value("criterion")
        if crit_node is not None:
            converted = convert(ctx, crit_node)
            d.loss_types, d.kind = converted.loss_types, converted.kind
        if ydist is not None and ydist.criterion_keys is not None:
            keys = ydist.criterion_keys
            doc.get(*keys)  # type: ignore[union-attr]
            extra.append(
                (
                    "TODO",
                    f"{doc.name}:{doc.line(keys)}: the yaml criterion `{keys[-1]}: {yaml_map.short(doc.get(*keys))}` was ignored by 1.x because the code sets `{comp.name}.criterion`; the code's criterion is migrated. If the yaml values were meant, pass them to the loss config",
                    line,
                )
            )  # type: ignore[union-attr]
    elif ydist is not None and ydist.criterion is not None:
        criterion = render(localize(ctx, ydist.criterion))
        d.loss_types = (
            ydist.loss_types
            if ydist.loss_types
            else (
                ["CE", "CE"] if ydist.criterion.func == "KnowledgeDistillationLossConfig" else None
            )
        )
        d.kind = next(k for k, v in yaml_map.LOSS_CONFIGS.items() if v == ydist.criterion.func)
    else:
        extra.append(
            (
                "TODO",
                "no distillation criterion in the code or the yaml: the 2.x default KnowledgeDistillationLossConfig() is used",
                line,
            )
        )
    teacher = attrs.value("teacher_model")
    if teacher is None:
        if d.kind == "SelfKnowledgeDistillationLoss" and student is not None:
            teacher = student
        else:
            extra.append(
                (
                    "TODO",
                    f"`{comp.name}` has no teacher model set in code; pass it to DistillationConfig",
                    line,
                )
            )
            teacher = "None"
    var = conf_name(ctx, comp)
    args = [teacher] + ([criterion] if criterion else [])
    if ydist is not None and ydist.optimizer:
        args.append(f"optimizer={render(ydist.optimizer)}")
        extra.append(
            (
                "INFO",
                f"{doc.name}: `distillation.train.optimizer` is carried to DistillationConfig(optimizer=), which 2.x stores but does not use; the training code's optimizer trains the student",
                line,
            )
        )  # type: ignore[union-attr]
    lines = [f"{var} = {ctx.sym('DistillationConfig')}({', '.join(args)})"]
    if ydist is not None:
        lines += tuning_lines(ctx, ydist.tuning)
    d.optimizer = attrs.value("optimizer")
    if (
        d.optimizer is None
        and ydist is not None
        and ydist.optimizer
        and _reads(comp, "optimizer")
        and student
    ):
        name, params = next(iter(ydist.optimizer.items()))
        d.optimizer = ctx.names.fresh(f"{comp.name}_optimizer")
        d.pre.append(f"{d.optimizer} = {torch_optimizer(ctx, name, params or {}, student)}")
    t = Technique("distillation", comp, lines, var, yaml_notes(ctx, doc, notes, comp) + extra)
    return t, d


def _reads(comp: Component, attr: str) -> bool:
    return any(u.kind in ("read", "call") and u.attr == attr for u in comp.uses)


def rewrite_reads(
    ctx: Ctx,
    comp: Component,
    attrs: Attrs,
    d: Distill,
    fit_scope: object,
    student: str | None,
    teacher: str | None,
) -> None:
    """`distiller.criterion(...)`, `distiller.optimizer`, `.teacher_model`, ... in the training code."""
    for use in (u for member in comp.family() for u in member.uses):
        if use.kind == "call" and use.attr == "criterion":
            _student_loss(ctx, comp, use, d)
        elif use.kind == "read" and use.attr in (
            "optimizer",
            "teacher_model",
            "student_model",
            "model",
        ):
            source = {"optimizer": ("optimizer",), "teacher_model": ("teacher_model",)}.get(
                use.attr, ("student_model", "model")
            )
            code = {"optimizer": d.optimizer, "teacher_model": teacher}.get(use.attr, student)
            given = next((a for a in source if attrs.has(a)), None)
            if code is None:
                ok = False
            elif given is not None:
                ok = attrs.code_at(given, code, use.scope)
            else:  # built here (an optimizer from the yaml), bound at the fit site
                ok = code.isidentifier() and ctx.a.visible(code, use.scope, fit_scope)  # type: ignore[arg-type]
            if ok:
                ctx.replace_expr(use.node, lambda _u, c=code: cst.parse_expression(c))  # type: ignore[arg-type]
                ctx.handled.add(id(use.name))
            else:
                what = (
                    "an optimizer built in code" if use.attr == "optimizer" else "the model itself"
                )
                ctx.note(
                    use.stmt,
                    "TODO",
                    f"`{comp.name}.{use.attr}` does not exist in 2.x; use {what} here",
                )
                ctx.handled.add(id(use.name))
        elif use.kind in ("read", "call") and use.attr in (
            "best_score",
            "best_model",
            "_epoch_runned",
            "eval_frequency",
        ):
            ctx.note(
                use.stmt,
                "TODO",
                f"`{comp.name}.{use.attr}`: 2.x distillation keeps no best model / score; track it in your own code",
            )
            ctx.handled.add(id(use.name))


def _student_loss(ctx: Ctx, comp: Component, use: Use, d: Distill) -> None:
    call = use.node
    assert isinstance(call, cst.Call)
    kind = d.loss_types[0] if d.loss_types else None
    if d.kind not in ("", "PyTorchKnowledgeDistillationLoss", "KnowledgeDistillationLoss"):
        ctx.note(
            use.stmt,
            "TODO",
            f"`{comp.name}.criterion(...)` of {d.kind}: 2.x computes this loss inside on_after_compute_loss; compute the student loss yourself here",
        )
        return
    if kind not in STUDENT_LOSS:
        ctx.note(
            use.stmt,
            "TODO",
            f"`{comp.name}.criterion(...)`: loss_types[0] is not known statically; cross-entropy is used, change it to match the 1.x loss_types[0]",
        )
        kind = "CE"
    torch = ctx.sym("torch")
    loss = cst.parse_expression(f"{torch}.nn.functional.{STUDENT_LOSS[kind]}")
    ctx.replace_expr(call.func, lambda _u: loss)
    ctx.handled.add(id(use.name))


def training_of(
    ctx: Ctx,
    comp: Component,
    doc: yaml_map.YamlDoc | None,
    attrs: Attrs,
    d: Distill,
    train: str | None,
    manager: str | None = None,
) -> Training:
    """The train function, or the 1.x built-in distillation loop written out."""
    student_loss = {"CE": "CrossEntropyLoss", "MSE": "MSELoss"}.get(
        str((d.loss_types or ["CE"])[0])
    )
    return resolve(
        ctx,
        comp,
        doc,
        attrs,
        "distillation",
        manager or comp.name,
        train,
        distillation=True,
        student_loss=student_loss,
        optimizer=d.optimizer if attrs.has("optimizer") else None,
    )


def plan(ctx: Ctx, comp: Component, fit: Use) -> None:
    doc = ctx.yaml_for(comp)
    attrs = Attrs(ctx, comp, fit.stmt)
    student = attrs.value("student_model", "model")
    t, d = technique(ctx, comp, doc, attrs, student)
    teacher = attrs.value("teacher_model")
    training = training_of(ctx, comp, doc, attrs, d, attrs.value("train_func"))
    rewrite_reads(ctx, comp, attrs, d, ctx.a.scope(fit.stmt), student, teacher)
    result = emit_single(ctx, comp, fit, t, student, training, d.pre)
    finish_fit(ctx, fit, result, training=True)
    attrs.finish(NO_HOME)
