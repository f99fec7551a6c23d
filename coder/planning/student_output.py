"""The student's prediction read through its model call's output (`model(x)[0]`,
`model(**batch).logits`): which reads the distillation runtime follows on the teacher's
output too, so that student and teacher outputs pair."""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis.source import Source
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

# the fields the runtime's distillation loss takes from a whole output (`logits_of`):
# the first element of a tuple, or `logits` (a ModelOutput's or a dict's), else a dict's `out`
# (torchvision segmentation); `loss` is the
# student's own loss, computed from the same output
FOLLOWED_FIELDS = ("0", "logits", "loss", "out")


def read_of(node: cst.CSTNode) -> str | None:
    """`0` of `x[0]`, `logits` of `x.logits` or `x["logits"]`; a slice's text; else None
    where `node` is not a subscript or attribute."""
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.Subscript):
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            value = node.slice[0].slice.value
            if isinstance(value, cst.Integer):
                return value.value
            if isinstance(value, cst.SimpleString):
                return value.evaluated_value if isinstance(value.evaluated_value, str) else None
        return ":"  # a slice or several indices
    return None


def accessed_call(value: cst.BaseExpression) -> tuple[cst.Call, cst.BaseExpression] | None:
    """(the call, its first read) when `value` is a call read through subscripts and
    attributes (`unet(x, t, return_dict=False)[0]`, `model(**b).logits[:, -1]`)."""
    node, first = value, None
    while isinstance(node, cst.Subscript | cst.Attribute):
        first = node
        node = node.value
    if isinstance(node, cst.Call) and first is not None:
        return node, first
    return None


def check_followed(src: Source, call: cst.Call, first: cst.BaseExpression) -> None:
    """The runtime calls the teacher as the student is called and reads the logits from
    its whole output: a first read that is not those logits would compare the
    student's `.sample` (say) with the teacher's first field."""
    field = read_of(first)
    if field in FOLLOWED_FIELDS:
        return
    raise AnalysisError(
        f"the student's prediction is {src.code(first)}: distillation hands the whole output "
        f"of {src.code(call.func)}(...) to the loss, which compares its logits (the first "
        "element of a tuple, or its `logits`) with the teacher's, and that is not the field "
        "the script reads",
        path=src.path,
        line=src.line(call),
        hint="have the model return its prediction first (return_dict=False, then [0]) or "
        "as `logits`",
    )


def changes_of(
    src: Source, name: str, call: cst.Call, loss_statement: cst.BaseStatement
) -> tuple[list[cst.BaseSmallStatement], list[cst.BaseSmallStatement]]:
    """The statements between the model call and the loss that bind `name` anew
    (`logits = logits[..., :-1, :]`) and those that change its value in place
    (`logits[-1] = ...`, `logits /= T`): after them `name` is not what the model returned."""
    function = src.enclosing_function(call) or src.module_of(call)
    first, last = src.line(call), src.line(loss_statement)
    rebound: list[cst.BaseSmallStatement] = []
    changed: list[cst.BaseSmallStatement] = []
    for small in m.findall(function, m.Assign() | m.AugAssign()):
        if not first < src.line(small) <= last:
            continue
        targets = (
            [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
        )
        for target in _unpacked(targets):
            if isinstance(target, cst.Name) and target.value == name:
                (rebound if isinstance(small, cst.Assign) else changed).append(small)  # type: ignore[arg-type]
            elif isinstance(target, cst.Subscript | cst.Attribute):
                base = target
                while isinstance(base, cst.Subscript | cst.Attribute):
                    base = base.value
                if isinstance(base, cst.Name) and base.value == name:
                    changed.append(small)  # type: ignore[arg-type]
    return rebound, changed


def _unpacked(targets: list[cst.BaseExpression]) -> list[cst.BaseExpression]:
    """The targets with those of tuple / list unpacking spelled out: `_, z2 = model(x2)`
    binds `_` anew as `_ = ...` does."""
    found: list[cst.BaseExpression] = []
    for target in targets:
        if isinstance(target, cst.Tuple | cst.List):
            found += _unpacked(
                [e.value for e in target.elements]  # `*rest` is a StarredElement's value
            )
        else:
            found.append(target)
    return found


def refuse_changed(src: Source, name: str, call: cst.Call, change: cst.CSTNode) -> None:
    raise AnalysisError(
        f"{name}, the output of {src.code(call.func)}(...) at line {src.line(call)}, is changed "
        f"in place at line {src.line(change)} ({src.code(change)}) before the loss: the "
        "distillation loss would compare the changed student output with the teacher's "
        "unchanged one",
        path=src.path,
        line=src.line(change),
        hint=f"put the changed value in a new name ({name}_shifted = ...) and leave {name} as "
        "the model returned it",
    )


def reads_as_losses(src: Source, output: str, loss_statement: cst.CSTNode) -> bool:
    """The loss is made of the model output's entries, its losses: `sum(loss for loss in
    loss_dict.values())` (torchvision detection), `sum(loss_dict.values())` (detectron2),
    `loss_dict["loss_cls"] + loss_dict["loss_box"]`. Such a model computes its losses
    from the targets it is given and returns no prediction to compare with a teacher's."""
    entries = m.Attribute(value=m.Name(output), attr=m.Name("values") | m.Name("items"))
    if m.findall(loss_statement, m.Call(func=entries)):
        return True
    reads = [
        node
        for node in m.findall(loss_statement, m.Subscript(value=m.Name(output)))
        if isinstance(node, cst.Subscript)
    ]
    # `outputs["loss"]` alone: the total loss a Hugging Face model returns beside its logits
    keys = [read_of(node) or "" for node in reads]
    return bool(reads) and all("loss" in key for key in keys) and set(keys) != {"loss"}


def refuse_losses_output(
    src: Source, output: str, call: cst.Call, loss_statement: cst.CSTNode
) -> None:
    raise AnalysisError(
        f"{output}, the output of {src.code(call.func)}(...) at line {src.line(call)}, holds "
        f"the model's own losses (the loss at line {src.line(loss_statement)} sums them): a "
        "model that computes its losses from the targets it is given (a detection model in "
        "train mode) returns no prediction that distillation could compare with a teacher's",
        path=src.path,
        line=src.line(loss_statement),
        hint="compress it with --approach pruning or qat, or have the model return its "
        "predictions in train mode and compute the losses in the script",
    )
