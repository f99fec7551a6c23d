"""Sections shared by every 2.x config: model/framework keyword arguments, tuning
criteria, diagnosis, evaluation, mixed precision and benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codegen import Call
from .document import YamlDoc
from .fields import Notes
from .schema import as_list, floats, percent

# --------------------------------------------------------------------------------------
# mapping sections to 2.x keyword arguments


def framework_kwargs(
    doc: YamlDoc, notes: Notes, *, model_name: bool, backend: bool = True, fx: bool = False
) -> dict[str, object]:
    """model.*, device: the kwargs the 2.x config classes share.

    `backend=False` (WeightPruningConfig, DistillationConfig): those classes take no
    device / backend; the model's own device and class decide, so the fields are read
    (reported when they say something) and not carried.
    """
    out: dict[str, object] = {}
    framework = doc.get("model", "framework")
    if not backend:
        if doc.has("device"):
            device = doc.get("device")
            if device != "cpu":
                notes.info(
                    ("device",),
                    f"`device: {device}`: 2.x pruning and distillation run where the model is; move the model to the device in code",
                )
        if framework not in (None, "pytorch", "pytorch_fx", "NA"):
            notes.info(
                ("model", "framework"),
                f"`model.framework: {framework}` does not change 2.x pruning or distillation; not carried over",
            )
        for key in ("inputs", "outputs"):
            doc.get("model", key)
        if doc.has("model", "name"):
            doc.get("model", "name")
        doc.get("version")
        return out
    if doc.has("device"):
        out["device"] = doc.get("device")
    if framework == "pytorch":
        if fx:
            notes.info(
                ("model", "framework"),
                "1.x `pytorch` meant eager mode; the 2.x default backend traces with FX and falls back to eager where tracing fails",
            )
    elif framework == "pytorch_ipex":
        out["backend"] = "ipex"
    elif framework == "onnxrt_qlinearops" or framework == "onnxrt_qoperator":
        out["quant_format"] = "QOperator"
    elif framework == "onnxrt_qdq":
        out["quant_format"] = "QDQ"
    elif framework not in (None, "pytorch_fx", "NA", "onnxrt_integerops"):
        notes.todo(
            ("model", "framework"),
            f"`model.framework: {framework}` is not a PyTorch framework; this tool migrates PyTorch scripts, check the backend by hand",
        )
    for key in ("inputs", "outputs"):
        if doc.has("model", key):
            value = as_list(doc.get("model", key))
            if value:
                out[key] = value
    if doc.has("model", "name"):
        name = doc.get("model", "name")
        if model_name:
            out["model_name"] = name
        else:
            notes.info(
                ("model", "name"),
                f"`model.name: {name}`: this 2.x config has no model name; not carried over",
            )
    doc.get("version")
    return out


STRATEGIES_2X = (
    "basic",
    "mse",
    "bayesian",
    "random",
    "exhaustive",
    "sigopt",
    "tpe",
    "mse_v2",
    "hawq_v2",
)


@dataclass
class Tuning:
    kwargs: dict[str, object] = field(
        default_factory=dict
    )  # accuracy_criterion, tuning_criterion, quant_level
    statements: list[Call] = field(default_factory=list)  # set_random_seed(...) etc.
    performance_only: bool = False


def tuning(doc: YamlDoc, notes: Notes, *, criteria: bool) -> Tuning:
    """The `tuning` section. `criteria`: the 2.x class takes accuracy/tuning criteria."""
    out = Tuning()
    for key, setter in (("random_seed", "set_random_seed"), ("tensorboard", "set_tensorboard")):
        if doc.has("tuning", key):
            out.statements.append(Call(setter, args=[doc.get("tuning", key)]))
    for key, setter in (("path", "set_workspace"), ("resume", "set_resume_from")):
        if doc.has("tuning", "workspace", key):
            out.statements.append(Call(setter, args=[doc.get("tuning", "workspace", key)]))
    if not criteria:
        return out  # the engine reports the unread tuning fields: they had no effect here
    accuracy: dict[str, object] = {}
    acc = ("tuning", "accuracy_criterion")
    if doc.has(*acc, "relative"):
        accuracy["criterion"] = "relative"
        accuracy["tolerable_loss"] = percent(doc.get(*acc, "relative"))
    if doc.has(*acc, "absolute"):
        if "criterion" in accuracy:
            notes.todo(
                acc, "both `relative` and `absolute` are set (1.x rejected this); using `absolute`"
            )
        accuracy["criterion"] = "absolute"
        accuracy["tolerable_loss"] = percent(doc.get(*acc, "absolute"))
    if doc.has(*acc, "higher_is_better"):
        accuracy["higher_is_better"] = doc.get(*acc, "higher_is_better")
    if accuracy:
        out.kwargs["accuracy_criterion"] = Call(
            "AccuracyCriterion",
            dict(
                sorted(
                    accuracy.items(),
                    key=lambda kv: ("higher_is_better", "criterion", "tolerable_loss").index(kv[0]),
                )
            ),
        )
    crit: dict[str, object] = {}
    strategy = ("tuning", "strategy")
    if doc.has(*strategy, "name"):
        name = doc.get(*strategy, "name")
        if name == "conservative":
            out.kwargs["quant_level"] = 0
        elif name == "auto":
            out.kwargs["quant_level"] = "auto"
        elif name in STRATEGIES_2X:
            crit["strategy"] = name
            out.kwargs["quant_level"] = 1  # otherwise quant_level="auto" overrides the strategy
        else:
            notes.todo(
                (*strategy, "name"),
                f"strategy `{name}` does not exist in 2.x (choose one of {', '.join(STRATEGIES_2X)})",
            )
    kwargs = {}
    for key in (
        "sigopt_api_token",
        "sigopt_project_id",
        "sigopt_experiment_name",
        "accuracy_weight",
        "latency_weight",
        "confidence_batches",
        "hawq_v2_loss",
    ):
        if doc.has(*strategy, key):
            kwargs[key] = doc.get(*strategy, key)
    if kwargs:
        crit["strategy_kwargs"] = kwargs
    if doc.has("tuning", "objective"):
        crit["objective"] = doc.get("tuning", "objective")
    if doc.has("tuning", "multi_objectives"):
        multi = doc.get("tuning", "multi_objectives")
        objective: dict[str, object] = {"objective": as_list(multi.get("objective", []))}
        if "weight" in multi:
            objective["weight"] = floats(multi["weight"])
        if "higher_is_better" in multi:
            objective["higher_is_better"] = [
                v if isinstance(v, bool) else v == "True"
                for v in as_list(multi["higher_is_better"])
            ]
        crit["objective"] = objective
    for key in ("timeout", "max_trials"):
        if doc.has("tuning", "exit_policy", key):
            crit[key] = doc.get("tuning", "exit_policy", key)
    if doc.has("tuning", "exit_policy", "performance_only"):
        out.performance_only = bool(doc.get("tuning", "exit_policy", "performance_only"))
    if crit:
        out.kwargs["tuning_criterion"] = Call("TuningCriterion", crit)
    return out


def diagnosis(doc: YamlDoc, notes: Notes) -> bool:
    if not doc.has("tuning", "diagnosis"):
        return False
    value = doc.get("tuning", "diagnosis")
    if isinstance(value, bool):
        return value
    on = bool(value.get("diagnosis_after_tuning", False))
    for key in value:
        if key != "diagnosis_after_tuning":
            notes.no_home(doc, ("tuning", "diagnosis", key))
    return on


# ---- evaluation ---------------------------------------------------------------------


@dataclass
class Evaluation:
    metric: dict[str, object] | None
    yaml_dataloader: bool


def evaluation(doc: YamlDoc, notes: Notes, *, used: bool) -> Evaluation:
    """`evaluation.accuracy`; `used`: the component evaluates through yaml (no eval_func)."""
    acc = ("evaluation", "accuracy")
    if not used:
        return Evaluation(None, False)
    metric = None
    if doc.has(*acc, "metric"):
        metric = dict(doc.get(*acc, "metric"))
    elif doc.has(*acc, "multi_metrics"):
        multi = dict(doc.get(*acc, "multi_metrics"))
        if "weight" in multi:
            multi["weight"] = floats(multi["weight"])
        if "higher_is_better" in multi:
            multi["higher_is_better"] = [
                v if isinstance(v, bool) else v == "True"
                for v in as_list(multi["higher_is_better"])
            ]
        metric = multi
    for key in ("postprocess", "configs"):
        if doc.has(*acc, key):
            notes.no_home(doc, (*acc, key))
    if doc.has(*acc, "iteration") and doc.get(*acc, "iteration") != -1:
        notes.no_home(doc, (*acc, "iteration"))
    return Evaluation(metric, doc.has(*acc, "dataloader"))


# ---- mixed precision, benchmark -----------------------------------------------------


def mixed_precision(doc: YamlDoc, notes: Notes) -> tuple[dict[str, object], Tuning]:
    kwargs = framework_kwargs(doc, notes, model_name=True)
    if doc.has("mixed_precision", "precisions"):
        values = [p for p in as_list(doc.get("mixed_precision", "precisions")) if p != "fp32"]
        if values:
            kwargs["precisions"] = values[0] if len(values) == 1 else values
        else:
            notes.todo(
                ("mixed_precision", "precisions"),
                "only fp32 is listed: nothing to convert (2.x precisions are bf16/fp16)",
            )
    if doc.has("mixed_precision", "op_wise"):
        notes.no_home(doc, ("mixed_precision", "op_wise"))
    tune = tuning(doc, notes, criteria=True)
    kwargs.update(tune.kwargs)
    return kwargs, tune


def benchmark(doc: YamlDoc, notes: Notes, mode: str) -> dict[str, object]:
    """BenchmarkConfig kwargs from `evaluation.<mode>`."""
    kwargs = framework_kwargs(doc, notes, model_name=True)
    section = ("evaluation", mode)
    for key in ("warmup", "iteration"):
        if doc.has(*section, key):
            kwargs[key] = doc.get(*section, key)
    for key, value in (doc.get(*section, "configs") or {}).items():
        if key in ("kmp_blocktime", "kmp_affinity"):
            notes.no_home(doc, (*section, "configs", key), value)
        else:
            kwargs[key] = value
    if doc.has(*section, "postprocess"):
        notes.no_home(doc, (*section, "postprocess"))
    return kwargs
