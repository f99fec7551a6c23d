"""The `.backward()` calls of a script and the loss each backpropagates: `loss.backward()`,
`scaler.scale(loss).backward()`, `accelerator.backward(loss)`, timm's
`loss_scaler(loss, optimizer)`, and a loss computed inline
(`F.cross_entropy(model(x), y).backward()`). Where the training loop analysis
(training.py) starts."""

from __future__ import annotations

import libcst as cst

from . import kinds
from .expressions import names_in
from .index import Index


def find_backward_calls(index: Index) -> list[cst.Call]:
    found = []
    scaler_calls = [c for c in index.calls if is_scaler_step_call(index, c)]
    for call in index.calls:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "backward":
            if not (scaler_calls and _in_scaler_call_method(index, call)):
                found.append(call)
    return sorted([*found, *scaler_calls], key=index.source.line)


def _in_scaler_call_method(index: Index, call: cst.Call) -> bool:
    """The backward inside the `__call__` of a scaler class the file defines (the
    backward of every `loss_scaler(loss, optimizer)` call, not a loop of its own)."""
    scope = index.scope_of(call)
    cls = index.class_of(scope)
    return (
        cls is not None
        and "scaler" in cls.name.value.lower()
        and isinstance(scope, cst.FunctionDef)
        and scope.name.value == "__call__"
    )


def is_scaler_step_call(index: Index, call: cst.Call) -> bool:
    """timm's `loss_scaler(loss, optimizer, clip_grad=..., parameters=...)`: the scaler
    object's `__call__` runs `loss.backward()`, unscales and clips the gradients and
    steps the optimizer (NativeScaler, and the copies of it in DeiT / MAE / BEiT)."""
    func = call.func
    if not isinstance(func, cst.Name | cst.Attribute):
        return False
    name = index.source.code(func).split(".")[-1].lower()
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if "scaler" not in name or len(positional) < 2 or not isinstance(positional[0].value, cst.Name):
        return False
    second = positional[1].value
    scope = index.scope_of(call)
    text = index.source.code(second).split(".")[-1].lower()
    return (
        "optim" in text
        or text == "opt"
        or any(kinds.is_optimizer(index, leaf) for leaf, _ in index.values_of(second, scope))
    )


def computes_the_loss(node: cst.BaseExpression) -> bool:
    """An expression that computes the loss with a call (`criterion(out, y)`,
    `(F.mse_loss(p, t) + reg)`, `criterion(out, y).mean()`) rather than reading a named
    loss (`loss / accumulation`, `loss.mean()`): the call is leftmost in it."""
    while True:
        if isinstance(node, cst.BinaryOperation):
            node = node.left
        elif isinstance(node, cst.UnaryOperation):
            node = node.expression
        elif isinstance(node, cst.Call):
            if node.args:
                return True
            node = node.func
        elif isinstance(node, cst.Attribute | cst.Subscript):
            node = node.value
        else:
            return False


def loss_name_of(index: Index, call: cst.Call) -> str | None:
    """`loss.backward()`, `scaler.scale(loss).backward()`, `accelerator.backward(loss)`,
    `loss_scaler(loss, optimizer, ...)`."""
    if is_scaler_step_call(index, call):
        first = call.args[0].value
        return first.value if isinstance(first, cst.Name) else None
    assert isinstance(call.func, cst.Attribute)
    receiver = call.func.value
    if call.args and not isinstance(receiver, cst.Call) and not call.args[0].keyword:
        # accelerator.backward(loss) / manual_backward(loss)
        candidate = call.args[0].value
        # `fabric.backward(loss / accumulation_steps)`: the loss is the left operand
        if computes_the_loss(candidate):  # `accelerator.backward(criterion(model(x), y))`
            return index.source.code(candidate)
        while isinstance(candidate, cst.BinaryOperation):
            candidate = candidate.left
        if isinstance(candidate, cst.Name):
            return candidate.value
        if _output_field(candidate):  # `accelerator.backward(outputs.loss)`
            return index.source.code(candidate)
    if isinstance(receiver, cst.Call) and receiver.args:
        func = receiver.func
        if isinstance(func, cst.Attribute) and "scale" in func.attr.value:
            receiver = receiver.args[0].value  # `scaler.scale(loss).backward()`
    if computes_the_loss(receiver):
        # `F.cross_entropy(model(x), y).backward()`: the loss is this expression, bound
        # to no name (its first argument is the model's output, not the loss)
        return index.source.code(receiver)
    field = reduced_loss(receiver)
    if _output_field(field):  # `outputs.loss.backward()`, `outputs[0].backward()`
        # `outputs.loss.mean().backward()` too: the reduction applies to the loss that
        # replaces the field as it did to the field
        return index.source.code(field)
    names = [n.value for n in names_in(receiver)]
    return names[0] if names else None


#: reductions of a loss tensor: DataParallel's per-device losses (`outputs.loss.mean()`)
_REDUCTIONS = frozenset({"mean", "sum"})


def reduced_loss(node: cst.BaseExpression) -> cst.BaseExpression:
    """`outputs.loss` of `outputs.loss.mean()`, `outputs.loss.sum()` and
    `outputs.loss / accumulation_steps`: the loss a reduction or a scaling reads."""
    while True:
        if (
            isinstance(node, cst.Call)
            and not node.args
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in _REDUCTIONS
        ):
            node = node.func.value
        elif isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            node = node.left
        else:
            return node


def _output_field(node: cst.BaseExpression) -> bool:
    """`outputs.loss`, `outputs["loss"]`, `outputs[0]`: a field of what a call returned (a
    Hugging Face model's output), read where the backward is called. The loss is that
    field, bound to no name of its own: the name `outputs` holds the model's outputs."""
    if isinstance(node, cst.Attribute):
        return isinstance(node.value, cst.Name) and node.value.value != "self"
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        return (
            isinstance(node.value, cst.Name)
            and isinstance(index, cst.Index)
            and isinstance(index.value, cst.SimpleString | cst.Integer)
        )
    return False
