"""Weights frozen before training: only adapters (LoRA) or nothing of the model train.

Pruning scores and masks the weights the optimizer trains; weights frozen with
`mark_only_lora_as_trainable(model)`, `model.requires_grad_(False)` or a loop that
turns `requires_grad` off get no gradient, so gradient-scored pruning never prunes
them. A freeze of a part (`model.backbone.requires_grad_(False)`, a loop that skips
the head) leaves the rest to prune and is not reported.
"""

from __future__ import annotations

import re

import libcst as cst

from neural_coder.transforms import match as m

from .index import Index, Scope, unwrap_pass_through
from .source import Source

# litgpt's mark_only_lora_as_trainable, loralib's mark_only_lora_as_trainable,
# mark_only_adapter_as_trainable, mark_only_prefix_as_trainable, ...
MARK_ONLY = re.compile(r"^mark_only_\w+_as_trainable$")
# a new layer of a kind pruning acts on (a new embedding is not pruned)
PRUNED_LAYER = re.compile(r"Linear|Conv|Sequential|Head|Classifier", re.IGNORECASE)
ADAPTER_WORDS = ("lora", "adapter", "prefix", "prompt", "ia3")
HEAD_NAMES = frozenset({"fc", "classifier", "head", "score", "cls", "last_linear", "output_layer"})


def whole_model_freeze(index: Index, model: str, scope: Scope) -> cst.CSTNode | None:
    """The statement or call that freezes every base weight of `model` in `scope` or, when
    `model` is a parameter there, in the callers that pass it in (a few levels up)."""
    seen: set[int] = set()
    pending = [(model, scope, 0)]
    while pending:
        name, where, depth = pending.pop()
        if id(where) in seen:
            continue
        seen.add(id(where))
        found = _freeze_in(index, name, where)
        if found is not None and not _part_trains_later(index, name, where, found):
            return found
        fn = index.function(where)
        if fn is None or name not in fn.all_params() or depth >= 3:
            continue
        for call in index.call_sites(fn):
            argument = index.bind_arguments(call, fn).get(name)
            if isinstance(argument, cst.Name | cst.Attribute):
                pending.append((index.source.code(argument), index.scope_of(call), depth + 1))
    return None


def linear_probe_freeze(
    index: Index, model: str, scope: Scope, depth: int = 0
) -> cst.CSTNode | None:
    """The freeze of every weight of `model` but its classifier head (a linear probe:
    `_part_trains_later` with `head_counts=False`), where it holds on every path: in `scope`,
    or, when `model` is a parameter there, in every caller that passes it in. A training
    function called once for a model fine-tuned whole and once for a linear probe (the
    transfer-learning tutorial) prunes the first: not reported."""
    found = _freeze_in(index, model, scope)
    if found is not None:
        return None if _part_trains_later(index, model, scope, found, False) else found
    fn = index.function(scope)
    if fn is None or model not in fn.all_params() or depth >= 3:
        return None
    freezes = []
    for call in index.call_sites(fn):
        argument = index.bind_arguments(call, fn).get(model)
        if not isinstance(argument, cst.Name | cst.Attribute):
            return None
        freeze = linear_probe_freeze(
            index, index.source.code(argument), index.scope_of(call), depth + 1
        )
        if freeze is None:
            return None
        freezes.append(freeze)
    return freezes[0] if freezes else None


def _freeze_in(index: Index, model: str, scope: Scope) -> cst.CSTNode | None:
    src = index.source
    for call in index.calls:
        if index.scope_of(call) is not scope:
            continue
        func = call.func
        last = src.code(func).rsplit(".", 1)[-1]
        if MARK_ONLY.match(last) and call.args and _is(src, call.args[0].value, model):
            return call
        if (
            isinstance(func, cst.Attribute)
            and last == "requires_grad_"
            and _is(src, func.value, model)
            and _turns_off(call)
        ):
            return call
    for loop in m.findall(scope, m.For()):
        if index.scope_of(loop) is scope and _loop_freezes_all(src, loop, model):  # type: ignore[arg-type]
            return loop
    return None


def _is(src: Source, expr: cst.BaseExpression, model: str) -> bool:
    return src.code(unwrap_pass_through(expr)) in (model, f"{model}.module")


def _turns_off(call: cst.Call) -> bool:
    return bool(call.args) and m.matches(call.args[0].value, m.Name("False"))


def _loop_freezes_all(src: Source, loop: cst.For, model: str) -> bool:
    """`for p in model.parameters(): p.requires_grad = False`, unconditionally or under a
    test of an adapter name (`if "lora" not in name:`)."""
    it = loop.iter
    if not (
        isinstance(it, cst.Call)
        and isinstance(it.func, cst.Attribute)
        and it.func.attr.value in ("parameters", "named_parameters")
        and _is(src, it.func.value, model)
    ):
        return False
    for assign in m.findall(loop.body, m.Assign()):
        target = assign.targets[0].target  # type: ignore[attr-defined]
        if not (
            isinstance(target, cst.Attribute)
            and target.attr.value == "requires_grad"
            and m.matches(assign.value, m.Name("False"))  # type: ignore[attr-defined]
        ):
            continue
        tests = [
            src.code(a.test)  # type: ignore[attr-defined]
            for a in src.ancestors(assign)
            if isinstance(a, cst.If)
            and a is not loop
            and any(a is b for b in m.findall(loop.body, m.If()))
        ]
        if not tests or any(w in t.lower() for t in tests for w in ADAPTER_WORDS):
            return True
    return False


def _part_trains_later(
    index: Index, model: str, scope: Scope, freeze: cst.CSTNode, head_counts: bool = True
) -> bool:
    """After the freeze, a part of the model is replaced (`model.fc = nn.Linear(...)`, a
    new trainable head) or turned back on (`model.fc.requires_grad_(True)`, a loop over
    `model.fc.parameters()`): that part trains and is pruned. `head_counts=False`: a
    classifier head trained again (accelerate's cv_example: `for p in
    model.get_classifier().parameters(): p.requires_grad = True`) does not count, as
    pruning leaves the head out."""
    src = index.source
    after = src.line(freeze)
    prefix = f"{model}."
    for assign in m.findall(scope, m.Assign()):
        if src.line(assign) <= after or index.scope_of(assign) is not scope:
            continue
        for t in assign.targets:  # type: ignore[attr-defined]
            code = src.code(t.target)
            value = assign.value  # type: ignore[attr-defined]
            if (
                code.startswith(prefix)
                and isinstance(value, cst.Call)
                and PRUNED_LAYER.search(src.code(value.func).rsplit(".", 1)[-1])
                and (
                    head_counts
                    or not _is_head(code)
                    or not src.code(value.func).endswith("Linear")  # a head of several layers
                )
            ):
                return True
    for call in index.calls:
        if index.scope_of(call) is not scope or src.line(call) <= after:
            continue
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "requires_grad_"
            and src.code(func.value).startswith(prefix)
            and not _turns_off(call)
            and (head_counts or not _is_head(src.code(func.value)))
        ):
            return True
    for loop in m.findall(scope, m.For()):
        it = loop.iter  # type: ignore[attr-defined]
        if (
            src.line(loop) > after
            and isinstance(it, cst.Call)
            and src.code(it.func).startswith(prefix)
            and m.findall(loop, m.Assign(value=m.Name("True")))
            and (head_counts or not _is_head(src.code(it.func).removesuffix(".parameters")))
        ):
            return True
    return False


def _is_head(part: str) -> bool:
    """`model.fc`, `model.classifier`, `model.get_classifier()`, `model.lm_head`: the
    output layer, which pruning leaves out (runtime: the last Linear)."""
    last = part.removesuffix("()").rsplit(".", 1)[-1].lower().removeprefix("get_")
    return last in HEAD_NAMES or last.endswith("head")
