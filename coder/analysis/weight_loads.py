"""Whether a statement loads trained weights into a model again (`model.load_state_dict(
...)`, `model = torch.load(f)`, `from_pretrained(output_dir)`), or binds its name to
another object: the facts `final_model.py` places fits and training ends by."""

from __future__ import annotations

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds
from .evaluation import is_model_expression
from .index import Index, Scope, unwrap_pass_through


def reloads(
    index: Index, statement: cst.CSTNode, name: str, scope: Scope, rebuilds: bool = False
) -> bool:
    """`statement` loads weights into the model (`model.load_state_dict(...)`, a helper
    such as `load_pretrained_weights(model, path)`, `model = torch.load(f)`,
    `model = Net.from_pretrained(output_dir)`); wrapping it (`model = Wrapper(model)`)
    is no reload, and building it again (`model = init_model()`, a fresh untrained
    model, or `from_pretrained` of the path it was first loaded from) counts only
    with `rebuilds`."""
    for call in m.findall(statement, m.Call(func=m.Attribute(attr=m.Name("load_state_dict")))):
        receiver = unwrap_pass_through(call.func.value)  # type: ignore[attr-defined]
        if index.source.code(receiver) in (name, f"{name}.module"):
            return True
    for call in m.findall(statement, m.Call(args=[m.Arg(value=m.Name(name)), m.ZeroOrMore()])):
        callee = index.source.code(call.func).rsplit(".", 1)[-1].lower()  # type: ignore[attr-defined]
        if "load" in callee and ("weight" in callee or "checkpoint" in callee or "state" in callee):
            return True
    # a checkpointer given the model loads into it: `DetectionCheckpointer(model, save_dir=d)
    # .resume_or_load(path)`, `Checkpointer(model).load(path)`
    checkpointer = m.Call(args=[m.Arg(value=m.Name(name)), m.ZeroOrMore()])
    for call in m.findall(statement, m.Call(func=m.Attribute(value=checkpointer))):
        if "load" in call.func.attr.value.lower():  # type: ignore[attr-defined]
            return True
    for assign in m.findall(statement, m.Assign()):
        for target in assign.targets:  # type: ignore[attr-defined]
            if index.source.code(target.target) != name:
                continue
            value = unwrap_pass_through(assign.value)  # type: ignore[attr-defined]
            if m.findall(value, m.Name(name)):
                continue  # model = model.to(device), model = Wrapper(model)
            if is_model_expression(index, value, scope) or kinds.model_kind(index, value):
                if rebuilds or _loads_trained_weights(index, value, name, scope):
                    return True
            elif isinstance(value, cst.Call) and "load" in index.source.code(value.func).lower():
                return True  # model = load_model(path), model = attempt_load(weights)
    return False


WEIGHT_LOADERS = ("from_pretrained", "load_from_checkpoint")


def _loads_trained_weights(
    index: Index, value: cst.BaseExpression, name: str, scope: Scope
) -> bool:
    """`value` reads weights from a file (`torch.load(f)`, `load_model(path)`,
    `from_pretrained(output_dir)`), not the pretrained source `name` was first built
    from (`from_pretrained(args.model_name_or_path)` again) nor a constructor."""
    for leaf, _ in index.values_of(value, scope):
        if not isinstance(leaf, cst.Call):
            continue
        callee = index.qualified(leaf.func)
        last = callee.rsplit(".", 1)[-1]
        if last in WEIGHT_LOADERS:
            return bool(leaf.args) and not _first_loaded_from(index, name, leaf, scope)
        if "load" in last.lower():
            return True
        if m.findall(leaf, m.Call(func=m.Name("load") | m.Attribute(attr=m.Name("load")))):
            return True
    return False


def _first_loaded_from(index: Index, name: str, call: cst.Call, scope: Scope) -> bool:
    """`call` loads from the same source as the first `name = X.from_pretrained(...)`."""
    source = index.source.code(call.args[0].value)
    for assignment in index.assignments.get(name, []):
        for first in m.findall(
            assignment.statement, m.Call(func=m.Attribute(attr=m.Name("from_pretrained")))
        ):
            if first is call:
                return False
            if first.args and index.source.code(first.args[0].value) == source:  # type: ignore[attr-defined]
                return True
    return False


def binds(statement: cst.CSTNode, model: str) -> bool:
    """`statement` binds `model` to another object (`model = Net()`; not `model =
    model.to(device)`)."""
    return any(
        m.matches(t.target, m.Name(model)) and not m.findall(assign.value, m.Name(model))
        for assign in m.findall(statement, m.Assign())
        for t in assign.targets  # type: ignore[attr-defined]
    )


def loads_weights(index: Index, node: cst.CSTNode, name: str, scope: Scope) -> bool:
    """`node` loads weights into the model `name` (see `reloads`), a fresh build aside."""
    return reloads(index, node, name, scope)
