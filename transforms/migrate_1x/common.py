"""`neural_compressor.experimental.common`: Model, DataLoader, Metric, Postprocess,
Criterions / Optimizers, and the PyTorch distillation loss classes.

* `common.Model(m)` -> `m` (2.x takes the framework model).
* `common.DataLoader(ds, batch_size=b, ...)` -> `torch.utils.data.DataLoader(ds, batch_size=b, ...)`
  (`last_batch='discard'` -> `drop_last=True`; 'rollover' is torch's default behaviour
  for the last partial batch, so it is dropped with an INFO).
* `common.Metric(cls, name=..., **kw)` -> `cls(**kw)`: 2.x `fit(eval_metric=)` takes any
  object with `reset` / `update` / `result`, which is what 1.x instantiated.
* `PyTorch*DistillationLoss(...)` -> the matching 2.x `*LossConfig(...)`.
* Postprocess, Criterions, Optimizers: no 2.x home (TODO).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst

from . import yaml_map
from .codegen import code_of, render
from .plan import Ctx

# 1.x signatures (positional order) of the criterion classes, and their 2.x config class
CRITERIA: dict[str, tuple[str, tuple[str, ...]]] = {
    "PyTorchKnowledgeDistillationLoss": (
        "KnowledgeDistillationLossConfig",
        ("temperature", "loss_types", "loss_weights", "student_model", "teacher_model"),
    ),
    "PyTorchIntermediateLayersKnowledgeDistillationLoss": (
        "IntermediateLayersKnowledgeDistillationLossConfig",
        (
            "layer_mappings",
            "loss_types",
            "loss_weights",
            "add_origin_loss",
            "student_model",
            "teacher_model",
        ),
    ),
    "PyTorchSelfKnowledgeDistillationLoss": (
        "SelfKnowledgeDistillationLossConfig",
        (
            "layer_mappings",
            "loss_types",
            "loss_weights",
            "temperature",
            "add_origin_loss",
            "student_model",
            "teacher_model",
        ),
    ),
}
_DATALOADER_ARGS = (
    "dataset",
    "batch_size",
    "collate_fn",
    "last_batch",
    "sampler",
    "batch_sampler",
    "num_workers",
    "pin_memory",
    "shuffle",
    "distributed",
)


@dataclass
class Converted:
    code: str | None  # None: not convertible, left as is with a TODO
    notes: list[tuple[str, str]]  # (kind, message)
    loss_types: list[object] | None = None  # criteria: loss_types when known
    kind: str = ""


def kind_of(ctx: Ctx, call: cst.Call) -> str | None:
    return next((k for c, k in ctx.a.common_calls if c is call), None)


def _args(call: cst.Call, names: tuple[str, ...]) -> dict[str, cst.BaseExpression] | None:
    out: dict[str, cst.BaseExpression] = {}
    for i, arg in enumerate(call.args):
        if arg.star:
            return None
        if arg.keyword is None:
            if i >= len(names):
                return None
            out[names[i]] = arg.value
        else:
            out[arg.keyword.value] = arg.value
    return out


def convert(ctx: Ctx, call: cst.Call, render_arg: object = None) -> Converted:
    """The 2.x code for a `common.*` / criterion call (arguments as the user wrote them)."""
    kind = kind_of(ctx, call) or ""
    text = code_of  # arguments keep the user's code
    if kind == "Model":
        if len(call.args) == 1 and call.args[0].keyword is None:
            return Converted(text(call.args[0].value), [], kind=kind)
        return Converted(
            None,
            [("TODO", "common.Model(...) with extra arguments: pass the framework model itself")],
            kind=kind,
        )
    if kind == "DataLoader":
        args = _args(call, _DATALOADER_ARGS)
        if args is None or "dataset" not in args:
            return Converted(
                None,
                [
                    (
                        "TODO",
                        "common.DataLoader(...) with arguments this tool cannot map: build a torch DataLoader",
                    )
                ],
                kind=kind,
            )
        notes: list[tuple[str, str]] = []
        parts = [text(args.pop("dataset"))]
        last = args.pop("last_batch", None)
        if last is not None:
            value = last.evaluated_value if isinstance(last, cst.SimpleString) else None
            if value == "discard":
                parts.append("drop_last=True")
            elif value != "rollover":
                notes.append(
                    (
                        "TODO",
                        f"last_batch={text(last)}: torch's DataLoader has drop_last=True|False only",
                    )
                )
            else:
                notes.append(
                    ("INFO", "last_batch='rollover' dropped: torch keeps the last partial batch")
                )
        distributed = args.pop("distributed", None)
        if distributed is not None and text(distributed) != "False":
            notes.append(("TODO", "distributed=True: use a torch DistributedSampler"))
        parts += [f"{k}={text(v)}" for k, v in args.items()]
        torch = ctx.sym("torch")
        return Converted(f"{torch}.utils.data.DataLoader({', '.join(parts)})", notes, kind=kind)
    if kind == "Metric":
        args = _args(call, ("metric_cls", "name"))
        if args is None or "metric_cls" not in args:
            return Converted(
                None,
                [
                    (
                        "TODO",
                        "common.Metric(...) with arguments this tool cannot map: pass a metric object to eval_metric=",
                    )
                ],
                kind=kind,
            )
        cls = text(args.pop("metric_cls"))
        args.pop("name", None)
        return Converted(
            f"{cls}({', '.join(f'{k}={text(v)}' for k, v in args.items())})", [], kind=kind
        )
    if kind in CRITERIA:
        return _criterion(ctx, call, kind)
    reasons = {
        "Postprocess": "common.Postprocess has no 2.x home: apply the postprocess inside eval_func",
        "Criterions": "the 1.x Criterions registry has no 2.x home: build the loss in code",
        "Optimizers": "the 1.x Optimizers registry has no 2.x home: build a torch optimizer",
    }
    return Converted(
        None,
        [("TODO", reasons.get(kind, f"`{code_of(call.func)}` has no 2.x equivalent"))],
        kind=kind,
    )


def _criterion(ctx: Ctx, call: cst.Call, kind: str) -> Converted:
    config, names = CRITERIA[kind]
    args = _args(call, names)
    if args is None:
        return Converted(
            None,
            [("TODO", f"{kind}(...) with arguments this tool cannot map: use {config}(...)")],
            kind=kind,
        )
    notes: list[tuple[str, str]] = []
    for dropped in ("student_model", "teacher_model"):
        if args.pop(dropped, None) is not None:
            notes.append(
                (
                    "INFO",
                    f"{dropped}= dropped: 2.x takes the models from prepare_compression and DistillationConfig",
                )
            )
    parts = []
    loss_types: list[object] | None = None
    for key, value in args.items():
        code = code_of(value)
        if key == "layer_mappings" and kind == "PyTorchIntermediateLayersKnowledgeDistillationLoss":
            literal = _literal(value)
            if literal is None:
                notes.append(
                    (
                        "TODO",
                        "layer_mappings is not a literal: convert each [student, teacher] item to [[student], [teacher]] (2.x form)",
                    )
                )
            else:
                try:
                    code = render(yaml_map.layer_mappings_2x(literal))
                except (ValueError, TypeError) as exc:
                    notes.append(("TODO", f"layer_mappings: {exc}"))
        if key == "loss_types":
            literal = _literal(value)
            loss_types = literal if isinstance(literal, list) else None
        parts.append(f"{key}={code}")
    if kind == "PyTorchKnowledgeDistillationLoss" and "loss_types" not in args:
        loss_types = ["CE", "CE"]
    return Converted(f"{ctx.sym(config)}({', '.join(parts)})", notes, loss_types, kind)


def _literal(node: cst.BaseExpression) -> object:
    try:
        return ast.literal_eval(code_of(node))
    except (ValueError, SyntaxError):
        return None


def plan_standalone(ctx: Ctx) -> None:
    """Rewrite every common / criterion call in place (those a planner did not consume too)."""
    for call, kind in ctx.a.common_calls:
        stmt = ctx.a.statement_of(call)
        if id(stmt) in ctx.frozen:
            continue  # part of a component left as 1.x code (its TODO says so)
        converted = convert(ctx, call)
        edit = ctx.stmt_edits.get(stmt)
        if converted.code is None and edit is not None and edit.replace is not None:
            continue  # the statement is gone and its TODO quotes this code
        for note_kind, message in converted.notes:
            ctx.note(stmt, note_kind, message, call)  # type: ignore[arg-type]
        if converted.code is None:
            continue
        ctx.handled.add(id(call))
        if kind == "Model":
            ctx.replace_expr(call, lambda updated: updated.args[0].value)  # type: ignore[attr-defined]
        else:
            ctx.replace_with_code(call, converted.code, stmt)
