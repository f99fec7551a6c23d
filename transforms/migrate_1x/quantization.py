"""`Quantization(yaml)`.

Post-training (static / dynamic / auto):

    quantizer = Quantization("conf.yaml")            conf = PostTrainingQuantConfig(...)
    quantizer.model = common.Model(model)      ->    q_model = quantization.fit(
    quantizer.calib_dataloader = dl                      model, conf, calib_dataloader=dl, eval_func=f
    quantizer.eval_func = f                          )
    q_model = quantizer.fit()

Quantization-aware training (`approach: quant_aware_training`, `q_func` trains):
a `QuantizationAwareTrainingConfig` and the `prepare_compression` block (manager.py).
The 1.0-style call `quantizer(model, q_dataloader, q_func, eval_dataloader, eval_func)`
is read the same way.
"""

from __future__ import annotations

import libcst as cst

from . import yaml_map
from .analysis import Component, Use
from .builtin_loop import resolve
from .codegen import Call, code_of, render
from .eval_loader import loader_of_eval
from .manager import (
    Note,
    Technique,
    emit_single,
    yaml_loader_replaced,
    yaml_notes,
    yaml_only_loader,
)
from .plan import Attrs, Ctx, unwrap_model

_CALIB_LOADER = ("quantization", "calibration", "dataloader")

V1_CALL = ("model", "calib_dataloader", "q_func", "eval_dataloader", "eval_func")
V1_KEYWORDS = {"q_dataloader": "calib_dataloader"}


def call_args(
    ctx: Ctx, fit: Use, names: tuple[str, ...], renames: dict[str, str]
) -> dict[str, str]:
    """Arguments of a 1.0-style call `component(model, ...)`, by 1.x attribute name."""
    call = fit.node
    out: dict[str, str] = {}
    if not isinstance(call, cst.Call):
        return out
    for i, arg in enumerate(call.args):
        key = (
            arg.keyword.value if arg.keyword is not None else (names[i] if i < len(names) else None)
        )
        if key is None:
            ctx.note(
                fit.stmt,
                "TODO",
                f"argument `{code_of(arg.value)}` of the 1.0-style call is not understood; dropped",
            )
            continue
        if isinstance(arg.value, cst.Name) and arg.value.value == "None":
            continue  # the 1.0 default
        out[renames.get(key, key)] = code_of(unwrap_model(arg.value, ctx))
    return out


def tuning_lines(ctx: Ctx, tune: yaml_map.Tuning) -> list[str]:
    return [render(Call(ctx.sym(c.func), c.kwargs, c.args, symbol=False)) for c in tune.statements]


def config_line(
    ctx: Ctx, var: str, cls: str, kwargs: dict[str, object], args: list[object] | None = None
) -> str:
    return f"{var} = {render(localize(ctx, Call(cls, kwargs, args or [])))}"


def localize(ctx: Ctx, value: object) -> object:
    """Replace 2.x symbol names by their local (imported) names."""
    if isinstance(value, Call):
        func = ctx.sym(value.func) if value.symbol else value.func
        return Call(
            func,
            {k: localize(ctx, v) for k, v in value.kwargs.items()},
            [localize(ctx, a) for a in value.args],
            symbol=False,
        )
    if isinstance(value, list):
        return [localize(ctx, v) for v in value]
    if isinstance(value, dict):
        return {k: localize(ctx, v) for k, v in value.items()}
    return value


def conf_name(ctx: Ctx, comp: Component) -> str:
    return ctx.names.fresh(f"{comp.name}_conf")


_NOT_QAT = {
    "calib_dataloader": "INFO: QAT does not calibrate (no effect in 1.x either)",
    "train_dataloader": "INFO: only the 1.x built-in training loop read it, and q_func is set",
    "eval_dataloader": "the 2.x prepare_compression block trains once and does not evaluate",
    "metric": "the 2.x prepare_compression block trains once and does not evaluate",
    "postprocess": "2.x has no postprocess; apply it inside eval_func",
}


def qat_technique(
    ctx: Ctx, comp: Component, doc: yaml_map.YamlDoc | None, attrs: Attrs
) -> Technique:
    notes = yaml_map.Notes()
    quant = yaml_map.quantization(doc, notes) if doc is not None else None
    kwargs = quant.kwargs if quant else {}
    var = conf_name(ctx, comp)
    lines = [config_line(ctx, var, "QuantizationAwareTrainingConfig", kwargs)]
    if quant:
        lines += tuning_lines(ctx, quant.tuning)
    extra: list[Note] = []
    if attrs.has("eval_func"):
        attrs.value("eval_func")
        extra.append(
            (
                "TODO",
                "1.x tuned QAT with eval_func against the accuracy criterion (retraining per trial); the block below trains once. For accuracy-driven tuning use training.fit(compression_manager, train_func, eval_func=...) with a train_func that returns the model",
                ctx.a.line(comp.stmt),
            )
        )
    return Technique("qat", comp, lines, var, yaml_notes(ctx, doc, notes, comp) + extra)


def plan(ctx: Ctx, comp: Component, fit: Use) -> None:
    doc = ctx.yaml_for(comp)
    approach = yaml_map.quant_approach(doc) if doc is not None else "static"
    attrs = Attrs(ctx, comp, fit.stmt)
    given = call_args(ctx, fit, V1_CALL, V1_KEYWORDS)
    if approach == "qat":
        _plan_qat(ctx, comp, fit, doc, attrs, given)
    else:
        _plan_ptq(ctx, comp, fit, doc, attrs, given, approach)


def _plan_qat(
    ctx: Ctx,
    comp: Component,
    fit: Use,
    doc: yaml_map.YamlDoc | None,
    attrs: Attrs,
    given: dict[str, str],
) -> None:
    technique = qat_technique(ctx, comp, doc, attrs)
    model = given.get("model") or attrs.value("model")
    train = given.get("q_func") or attrs.value("q_func", "train_func", "calib_func")
    training = resolve(ctx, comp, doc, attrs, "quantization", comp.name, train)
    result = emit_single(ctx, comp, fit, technique, model, training)
    finish_fit(ctx, fit, result, training=True)
    attrs.finish(_NOT_QAT)


def _plan_ptq(
    ctx: Ctx,
    comp: Component,
    fit: Use,
    doc: yaml_map.YamlDoc | None,
    attrs: Attrs,
    given: dict[str, str],
    approach: str,
) -> None:
    model = given.get("model") or attrs.value("model")
    chunk, notes, result = ptq_block(ctx, comp, doc, attrs, given, approach, fit.stmt, model)
    ctx.before(fit.stmt, ctx.gen(chunk, fit.stmt, notes))
    finish_fit(ctx, fit, result, training=False)
    attrs.finish(PTQ_NO_HOME)


PTQ_NO_HOME = {
    "postprocess": "2.x has no postprocess; apply it inside eval_func",
    "objective": "a custom 1.x objective has no 2.x home (TuningCriterion(objective=) takes a name)",
}


def ptq_block(
    ctx: Ctx,
    comp: Component,
    doc: yaml_map.YamlDoc | None,
    attrs: Attrs,
    given: dict[str, str],
    approach: str,
    at: cst.BaseStatement,
    model: str | None,
) -> tuple[list[str], list[Note], str]:
    """The config lines, their notes, and the `quantization.fit(...)` expression."""
    notes = yaml_map.Notes()
    quant = yaml_map.quantization(doc, notes) if doc is not None else None
    kwargs = dict(quant.kwargs) if quant else {}
    line = ctx.a.line(comp.stmt)
    fit_kwargs: dict[str, str] = {}
    extra: list[Note] = []
    calib = given.get("calib_dataloader") or attrs.value("calib_dataloader")
    calib_func = given.get("q_func") or attrs.value("q_func", "calib_func")
    eval_func = given.get("eval_func") or attrs.value("eval_func")
    eval_loader = given.get("eval_dataloader") or attrs.value("eval_dataloader")
    if approach == "dynamic":
        if calib is not None:
            extra.append(
                (
                    "INFO",
                    "the calibration dataloader is dropped: dynamic quantization does not calibrate",
                    line,
                )
            )
        calib = None
    elif calib is None and calib_func is None:
        stand_in = loader_of_eval(ctx.a.module, eval_func, eval_loader, comp.scope)
        if quant and quant.yaml_calib_dataloader and stand_in is not None:
            calib = stand_in[0]
            doc.get(*_CALIB_LOADER)  # type: ignore[union-attr]
            extra.append(
                (
                    "TODO",
                    f"{doc.name}:{doc.line(_CALIB_LOADER)}: the calibration dataloader was built from a "  # type: ignore[union-attr]
                    f"dataset in the yaml; calibration now uses `{calib}`, the loader {stand_in[1]}: "
                    "build a calibration loader from training data if that is not representative",
                    line,
                )
            )
        elif quant and quant.yaml_calib_dataloader:
            extra.append(
                yaml_only_loader(doc, _CALIB_LOADER, "calibration", "calib_dataloader=", line)  # type: ignore[arg-type]
            )
        else:
            extra.append(
                (
                    "TODO",
                    f"{approach} quantization needs calibration data: pass calib_dataloader= (or calib_func=)",
                    line,
                )
            )
    elif quant and quant.yaml_calib_dataloader:
        extra.append(yaml_loader_replaced(doc, _CALIB_LOADER, "calibration data", line))  # type: ignore[arg-type]
    if calib is not None:
        fit_kwargs["calib_dataloader"] = calib
    if calib_func is not None:
        fit_kwargs["calib_func"] = calib_func
    metric = attrs.value("metric")
    if eval_func is not None:
        fit_kwargs["eval_func"] = eval_func
    else:
        ev = yaml_map.evaluation(doc, notes, used=True) if doc is not None else None
        if eval_loader is None and ev is not None and ev.yaml_dataloader:
            extra.append(
                yaml_only_loader(
                    doc,  # type: ignore[arg-type]
                    ("evaluation", "accuracy", "dataloader"),
                    "evaluation",
                    "eval_dataloader= (and eval_metric=)",
                    line,
                )
            )
        if eval_loader is not None:
            fit_kwargs["eval_dataloader"] = eval_loader
            if metric is not None:
                fit_kwargs["eval_metric"] = metric
            elif ev is not None and ev.metric:
                fit_kwargs["eval_metric"] = render(ev.metric)
            else:
                extra.append(
                    ("TODO", "an eval dataloader without a metric: pass eval_metric=", line)
                )
    if (
        quant
        and quant.tuning.performance_only
        and ("eval_func" in fit_kwargs or "eval_dataloader" in fit_kwargs)
    ):
        for key in ("eval_func", "eval_dataloader", "eval_metric"):
            fit_kwargs.pop(key, None)
        extra.append(
            (
                "INFO",
                "tuning.exit_policy.performance_only: the model is quantized once without evaluation (fit() gets no eval_func / eval_dataloader)",
                line,
            )
        )
    var = conf_name(ctx, comp)
    lines = [config_line(ctx, var, "PostTrainingQuantConfig", kwargs)]
    if quant:
        lines += tuning_lines(ctx, quant.tuning)
    all_notes = yaml_notes(ctx, doc, notes, comp) + extra
    if model is None:
        all_notes.append(
            ("TODO", f"`{comp.name}` has no model set in code; pass the model to quantize", line)
        )
    args = [model or "model", var] + [f"{k}={v}" for k, v in fit_kwargs.items()]
    return lines, all_notes, f"{ctx.sym('quantization')}.fit({', '.join(args)})"


def finish_fit(ctx: Ctx, fit: Use, result: str, *, training: bool) -> None:
    """Replace the fit call by `result` (or drop a bare training fit statement)."""
    stmt = fit.stmt
    call = fit.node
    assert isinstance(call, cst.Call)
    ctx.handled.add(id(call))
    bare = (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and stmt.body[0].value is call
    )
    if bare and training:
        ctx.remove(stmt)
    else:
        ctx.replace_with_code(call, result, stmt)
