"""`Benchmark(yaml)` -> `benchmark.fit(model, BenchmarkConfig(...), b_dataloader=...)`.

The benchmark settings live in the yaml's `evaluation.performance` (warmup,
iteration, configs.cores_per_instance / num_of_instance / *_num_of_threads).
`evaluator('accuracy')` has no 2.x benchmark mode: it becomes a call of the
user's `b_func(model)` (or a TODO when 1.x evaluated through yaml metrics).
"""

from __future__ import annotations

import libcst as cst

from . import yaml_map
from .analysis import Component, Use
from .manager import Note, yaml_loader_replaced, yaml_notes, yaml_only_loader
from .plan import Attrs, Ctx
from .quantization import conf_name, config_line, finish_fit

_LOADER = ("evaluation", "performance", "dataloader")

NO_HOME = {
    "metric": "2.x benchmark measures performance only; evaluate accuracy with your eval function",
    "postprocess": "2.x benchmark has no postprocess",
}


def mode_of(fit: Use) -> str | None:
    call = fit.node
    assert isinstance(call, cst.Call)
    for i, arg in enumerate(call.args):
        if (arg.keyword is None and i == 0) or (
            arg.keyword is not None and arg.keyword.value == "mode"
        ):
            if isinstance(arg.value, cst.SimpleString):
                value = arg.value.evaluated_value
                return value if isinstance(value, str) else None
            return None
    return "performance"


def plan(ctx: Ctx, comp: Component, fit: Use) -> None:
    line = ctx.a.line(comp.stmt)
    mode = mode_of(fit)
    if mode not in ("performance", "accuracy"):
        ctx.note(
            fit.stmt,
            "TODO",
            f"`{comp.name}(...)`: the benchmark mode is not a literal 'performance' or 'accuracy'; migrate this call by hand (benchmark.fit(model, BenchmarkConfig(...), b_dataloader=...) for performance)",
        )
        return
    doc = ctx.yaml_for(comp)
    notes = yaml_map.Notes()
    attrs = Attrs(ctx, comp, fit.stmt)
    model = attrs.value("model")
    extra: list[Note] = []
    if model is None:
        extra.append(
            ("TODO", f"`{comp.name}` has no model set in code; pass the model to benchmark", line)
        )
    loader = attrs.value("b_dataloader")
    func = attrs.value("b_func")
    if mode == "accuracy":
        if func is not None:
            finish_fit(ctx, fit, f"{func}({model or 'model'})", training=False)
            if extra:
                ctx.before(fit.stmt, ctx.gen([], fit.stmt, extra))
        else:
            ctx.note(
                fit.stmt,
                "TODO",
                "accuracy benchmarking through the yaml metric and dataloader has no 2.x form: call your evaluation function on the model here",
            )
            return
        attrs.finish(NO_HOME)
        return
    kwargs = yaml_map.benchmark(doc, notes, "performance") if doc is not None else {}
    fit_kwargs: dict[str, str] = {}
    if loader is not None:
        fit_kwargs["b_dataloader"] = loader
    if func is not None:
        fit_kwargs["b_func"] = func
    if loader is None and func is None:
        if doc is not None and doc.has(*_LOADER):
            extra.append(yaml_only_loader(doc, _LOADER, "benchmark", "b_dataloader=", line))
        else:
            extra.append(("TODO", "no b_dataloader or b_func: pass one to benchmark.fit", line))
    elif doc is not None and doc.has(*_LOADER):
        extra.append(yaml_loader_replaced(doc, _LOADER, "b_dataloader / b_func", line))
    stmt = fit.stmt
    used = not (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.Expr)
        and stmt.body[0].value is fit.node
    )
    if used:
        extra.append(
            (
                "TODO",
                "2.x benchmark.fit reruns this script per instance and returns None in the launching process; the 1.x result is not available here",
                ctx.a.line(stmt),
            )
        )
    var = conf_name(ctx, comp)
    ctx.before(
        stmt,
        ctx.gen(
            [config_line(ctx, var, "BenchmarkConfig", kwargs)],
            stmt,
            yaml_notes(ctx, doc, notes, comp) + extra,
        ),
    )
    args = [model or "model", var] + [f"{k}={v}" for k, v in fit_kwargs.items()]
    finish_fit(ctx, fit, f"{ctx.sym('benchmark')}.fit({', '.join(args)})", training=False)
    attrs.finish(NO_HOME)
