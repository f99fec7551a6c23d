"""`MixedPrecision(yaml)` -> `mix_precision.fit(model, MixedPrecisionConfig(...), ...)`.

converter = MixedPrecision("conf.yaml")          conf = MixedPrecisionConfig(precisions="bf16")
converter.precisions = "bf16"              ->    out = mix_precision.fit(model, conf, eval_func=f)
converter.model = common.Model(model)
converter.eval_func = f
out = converter()
"""

from __future__ import annotations

from . import yaml_map
from .analysis import Component, Use
from .codegen import Code
from .manager import Note, yaml_notes
from .plan import Attrs, Ctx
from .quantization import conf_name, config_line, finish_fit, tuning_lines

NO_HOME = {"postprocess": "2.x has no postprocess; apply it inside eval_func"}


def plan(ctx: Ctx, comp: Component, fit: Use) -> None:
    doc = ctx.yaml_for(comp)
    notes = yaml_map.Notes()
    kwargs, tune = yaml_map.mixed_precision(doc, notes) if doc is not None else ({}, None)
    attrs = Attrs(ctx, comp, fit.stmt)
    line = ctx.a.line(comp.stmt)
    extra: list[Note] = []
    known, literal = attrs.literal("precisions")
    precisions = None if known else attrs.value("precisions")
    if known:
        values = [p for p in yaml_map.as_list(literal) if p != "fp32"]
        kwargs["precisions"] = values[0] if len(values) == 1 else values
    elif precisions is not None:
        kwargs["precisions"] = Code(precisions)
        extra.append(
            (
                "TODO",
                "precisions is not a literal: 2.x accepts 'bf16' / 'fp16' or a list of them (1.x also took 'bf16,fp32'; 'fp32' is implied in 2.x), check the value",
                line,
            )
        )
    for attr, key in (("input", "inputs"), ("output", "outputs")):
        value = attrs.value(attr)
        if value is not None:
            kwargs[key] = Code(value)
    model = attrs.value("model")
    fit_kwargs: dict[str, str] = {}
    for attr, key in (
        ("eval_func", "eval_func"),
        ("eval_dataloader", "eval_dataloader"),
        ("metric", "eval_metric"),
    ):
        value = attrs.value(attr)
        if value is not None:
            fit_kwargs[key] = value
    if "eval_func" not in fit_kwargs and doc is not None:
        ev = yaml_map.evaluation(doc, notes, used=True)
        if "eval_dataloader" not in fit_kwargs and ev.yaml_dataloader:
            doc.get("evaluation", "accuracy", "dataloader")
            extra.append(
                (
                    "TODO",
                    f"{doc.name}:{doc.line(('evaluation', 'accuracy', 'dataloader'))}: the evaluation dataloader exists only in the yaml; build it in code and pass eval_dataloader= and eval_metric=",
                    line,
                )
            )
        elif "eval_dataloader" in fit_kwargs and "eval_metric" not in fit_kwargs and ev.metric:
            fit_kwargs["eval_metric"] = repr(ev.metric)
    var = conf_name(ctx, comp)
    lines = [config_line(ctx, var, "MixedPrecisionConfig", kwargs)]
    if tune is not None:
        lines += tuning_lines(ctx, tune)
    if model is None:
        extra.append(
            ("TODO", f"`{comp.name}` has no model set in code; pass the model to convert", line)
        )
    ctx.before(fit.stmt, ctx.gen(lines, fit.stmt, yaml_notes(ctx, doc, notes, comp) + extra))
    args = [model or "model", var] + [f"{k}={v}" for k, v in fit_kwargs.items()]
    finish_fit(ctx, fit, f"{ctx.sym('mix_precision')}.fit({', '.join(args)})", training=False)
    attrs.finish(NO_HOME)
