"""A script that saves state dicts with safetensors (`save_file(model.state_dict(), path)`)
and loads them back (`model.load_state_dict(load_file(path))`), under an int8 approach.

safetensors refuses an int8 model's state dict (quantized tensors, packed `(weight, bias)`
tuples, a dtype) and a QAT model's (torch.fx shares one observer's buffers under several
names), so such a script would train to the end and then fail at its save; and it drops
the recipe that `structure_for` rebuilds the int8 model from. Every save gets the state
dict through `tensors_only` and every load through `state_dict_from_tensors`
(`runtime/plain_tensors.py`): plain tensors both ways, and a float model's state dict,
which safetensors already takes, as it is. So saves and loads of float models elsewhere
in the script are unchanged when run.

`accelerator.save_model(model, folder)` fails on an int8 state dict too, in either
serialization (its sharding reads every entry as a tensor): the model it is given goes
through `tensors_only`, whose view of a module gives its state dict as plain tensors.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis.index import Index
from neural_coder.options import OptimizeOptions
from neural_coder.transforms.edits import AddImport, Edit, ReplaceExpression
from neural_coder.transforms.snippets import RUNTIME_MODULES

from .int8_reloads import INT8_TECHNIQUES

SAVES = {"safetensors.torch.save_file", "safetensors.torch.save"}
LOADS = {"safetensors.torch.load_file", "safetensors.torch.load"}
TO_TENSORS = "tensors_only"
FROM_TENSORS = "state_dict_from_tensors"


def safetensors_edits(
    index: Index, options: OptimizeOptions, plan_edits: list[Edit]
) -> tuple[list[Edit], list[str], list[str]]:
    """The edits that route the script's safetensors saves and loads through the runtime's
    plain-tensor form, what the report says of them, and its warnings (INC). A load the
    plan already replaces (read once before `structure_for`, which takes the
    plain-tensor form) is left to it."""
    if not INT8_TECHNIQUES.intersection(options.techniques):
        return [], [], []
    if options.target != "runtime":
        return [], [], _warn_on_inc(index)
    replaced = {id(e.node) for e in plan_edits if isinstance(e, ReplaceExpression)}
    edits: list[Edit] = []
    lines: dict[str, list[int]] = {TO_TENSORS: [], FROM_TENSORS: []}
    for call in index.calls:
        name = index.qualified(call.func)
        if name in SAVES or _accelerate_save_model(index, call):
            tensors = _tensors_argument(call)
            if tensors is None or _wrapped(tensors, TO_TENSORS):
                continue
            edits.append(ReplaceExpression(tensors, f"{TO_TENSORS}({index.source.code(tensors)})"))
            lines[TO_TENSORS].append(index.source.line(call))
        elif (
            name in LOADS
            and id(call) not in replaced
            and not _wrapped(_enclosing_call(index, call), FROM_TENSORS)
        ):
            edits.append(ReplaceExpression(call, f"{FROM_TENSORS}({index.source.code(call)})"))
            lines[FROM_TENSORS].append(index.source.line(call))
    placed = []
    package = RUNTIME_MODULES["runtime"]["package"]
    for wrapper, at in lines.items():
        if at:
            edits.append(AddImport(package, wrapper))
            placed.append(f"{wrapper}: {_WHAT[wrapper]} at line(s) {', '.join(map(str, at))}")
    return edits, placed, []


_WHAT = {
    TO_TENSORS: "what the safetensors save is given (it refuses an int8 or QAT state dict)",
    FROM_TENSORS: "the safetensors load (a compressed state dict back as it was saved)",
}


def _warn_on_inc(index: Index) -> list[str]:
    """INC's int8 model has no plain-tensor form: its safetensors saves fail."""
    saves = [
        index.source.line(call)
        for call in index.calls
        if index.qualified(call.func) in SAVES or _accelerate_save_model(index, call)
    ]
    if not saves:
        return []
    return [
        f"the safetensors save at line(s) {', '.join(map(str, saves))} fails on "
        "INC's int8 model (quantized tensors and packed weights are no plain tensors): "
        "save it with torch.save, or use the bundled runtime (--target runtime), which "
        "stores it as plain tensors"
    ]


def _accelerate_save_model(index: Index, call: cst.Call) -> bool:
    """`accelerator.save_model(model, folder)` on an `accelerate.Accelerator(...)`."""
    func = call.func
    if not (isinstance(func, cst.Attribute) and func.attr.value == "save_model"):
        return False
    return any(
        isinstance(leaf, cst.Call) and index.qualified(leaf.func) == "accelerate.Accelerator"
        for leaf, _ in index.values_of(func.value, index.scope_of(call))
    )


def _tensors_argument(call: cst.Call) -> cst.BaseExpression | None:
    for position, arg in enumerate(call.args):
        if arg.star:
            return None
        if (arg.keyword is None and position == 0) or (
            arg.keyword is not None and arg.keyword.value in ("tensors", "model")
        ):
            return arg.value
    return None


def _enclosing_call(index: Index, node: cst.CSTNode) -> cst.CSTNode | None:
    """The call `node` is an argument of, if it is one."""
    parent = index.source.parents.get(node)
    return index.source.parents.get(parent) if isinstance(parent, cst.Arg) else None


def _wrapped(node: cst.CSTNode | None, wrapper: str) -> bool:
    """`node` is a call of `wrapper` (the tool ran before: nothing to add)."""
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == wrapper
    )
