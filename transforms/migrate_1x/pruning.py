"""`Pruning(yaml)` -> `WeightPruningConfig` + the `prepare_compression` block.

    prune = Pruning("conf.yaml")                 steps_per_epoch = len(train_loader)
    prune.model = common.Model(model)      ->    prune_conf = WeightPruningConfig(...)
    prune.train_func = train                     prune = prepare_compression(model, prune_conf)
    model = prune.fit()                          prune.callbacks.on_train_begin()
                                                 model = prune.model
                                                 train(model)
                                                 prune.callbacks.on_train_end()
                                                 model = prune.model

Inside `train`, `prune.on_*` hooks become `prune.callbacks.on_*` and
`prune.callbacks.on_after_optimizer_step()` follows each `optimizer.step()`.
Epoch-based yaml settings become steps through `steps_per_epoch`; 1.x parameter
names (`layer.weight`) become anchored module-name regexes (`^layer$`).
"""

from __future__ import annotations

from . import yaml_map
from .analysis import Component, Use
from .builtin_loop import resolve
from .manager import Technique, emit_single, yaml_notes
from .plan import Attrs, Ctx
from .quantization import call_args, conf_name, config_line, finish_fit, tuning_lines

V1_CALL = ("model", "train_dataloader", "train_func", "eval_dataloader", "eval_func")
V1_KEYWORDS = {
    "pruning_func": "train_func",
    "q_dataloader": "train_dataloader",
    "q_func": "train_func",
}

NO_HOME = {
    "eval_func": "INFO: 2.x pruning does not evaluate (1.x only logged the score before and after); call eval_func on the pruned model yourself",
    "eval_dataloader": "INFO: 2.x pruning does not evaluate (1.x only logged the score)",
    "train_dataloader": "INFO: only the 1.x built-in training loop read it, and a train function is set",
}


def technique(ctx: Ctx, comp: Component, doc: yaml_map.YamlDoc | None) -> Technique:
    notes = yaml_map.Notes()
    var = conf_name(ctx, comp)
    if doc is None:
        return Technique("pruning", comp, [config_line(ctx, var, "WeightPruningConfig", {})], var)
    steps = ctx.names.fresh("steps_per_epoch")
    p = yaml_map.pruning(doc, notes, steps)
    lines = [config_line(ctx, var, "WeightPruningConfig", p.kwargs), *tuning_lines(ctx, p.tuning)]
    return Technique(
        "pruning",
        comp,
        lines,
        var,
        yaml_notes(ctx, doc, notes, comp),
        steps if p.uses_epochs else None,
    )


def plan(ctx: Ctx, comp: Component, fit: Use) -> None:
    doc = ctx.yaml_for(comp)
    attrs = Attrs(ctx, comp, fit.stmt)
    given = call_args(ctx, fit, V1_CALL, V1_KEYWORDS)
    t = technique(ctx, comp, doc)
    model = given.get("model") or attrs.value("model")
    train = given.get("train_func") or attrs.value("train_func", "pruning_func")
    training = resolve(ctx, comp, doc, attrs, "pruning", comp.name, train)
    result = emit_single(ctx, comp, fit, t, model, training)
    finish_fit(ctx, fit, result, training=True)
    attrs.finish(NO_HOME)
