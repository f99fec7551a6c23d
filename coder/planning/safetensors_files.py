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
) -> tuple[list[Edit], list[str]]:
    """The edits that route the script's safetensors saves and loads through the runtime's
    plain-tensor form, and what the report says of them. A load the plan already
    replaces (read once before `structure_for`, which takes the plain-tensor form) is
    left to it."""
    if options.target != "runtime" or not INT8_TECHNIQUES.intersection(options.techniques):
        return [], []
    replaced = {id(e.node) for e in plan_edits if isinstance(e, ReplaceExpression)}
    edits: list[Edit] = []
    lines: dict[str, list[int]] = {TO_TENSORS: [], FROM_TENSORS: []}
    for call in index.calls:
        name = index.qualified(call.func)
        if name in SAVES:
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
    return edits, placed


_WHAT = {
    TO_TENSORS: "the state dict of the safetensors save (it refuses an int8 or QAT one as it is)",
    FROM_TENSORS: "the safetensors load (a compressed state dict back as it was saved)",
}


def _tensors_argument(call: cst.Call) -> cst.BaseExpression | None:
    for position, arg in enumerate(call.args):
        if arg.star:
            return None
        if (arg.keyword is None and position == 0) or (
            arg.keyword is not None and arg.keyword.value == "tensors"
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
