"""The 1.x built-in training loop, written out as code.

Without a `train_func`, 1.x trained with a loop built from the yaml `train` section
(optimizer, criterion, start/end epoch, iteration) over the component's
`train_dataloader`, calling every hook (spec 7.1). 2.x has no built-in loop, so the
migration writes that loop as a function next to the `prepare_compression` block:

    def prune_train(model):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        criterion = torch.nn.CrossEntropyLoss()
        for epoch in range(0, 4):
            prune.callbacks.on_epoch_begin(epoch)
            for step, (inputs, labels) in enumerate(train_loader):
                ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import yaml_map
from .analysis import Component
from .codegen import Code, render
from .manager import Note
from .plan import Attrs, Ctx

_OPTIMIZERS = ("SGD", "Adam", "AdamW")


@dataclass
class Loop:
    name: str  # the function to call with the model
    lines: list[str]  # its definition
    notes: list[Note]
    steps: str  # optimizer steps per epoch


def torch_optimizer(ctx: Ctx, name: str, params: dict[str, object], model: str) -> str:
    """`torch.optim.<name>(model.parameters(), ...)` from a 1.x yaml optimizer entry."""
    torch = ctx.sym("torch")
    kwargs: dict[str, object] = {
        "lr": params.get("learning_rate", 0.001 if name != "SGD" else None)
    }
    if name == "SGD":
        for key in ("momentum", "nesterov", "weight_decay"):
            if key in params:
                kwargs[key] = params[key]
    else:
        betas = (params.get("beta_1", 0.9), params.get("beta_2", 0.999))
        kwargs["betas"] = Code(f"({render(betas[0])}, {render(betas[1])})")  # a tuple, as torch
        kwargs["eps"] = params.get("epsilon", 1e-07)  # the 1.x default (torch's is 1e-08)
        for key in ("amsgrad", "weight_decay"):
            if key in params:
                kwargs[key] = params[key]
    parts = ", ".join(f"{k}={render(v)}" for k, v in kwargs.items() if v is not None)
    return f"{torch}.optim.{name}({model}.parameters(), {parts})"


def build(
    ctx: Ctx,
    doc: yaml_map.YamlDoc,
    section: tuple[str, ...],
    manager: str,
    loader: str,
    *,
    distillation: bool,
    student_loss: str | None,
    optimizer: str | None,
    line: int,
) -> Loop | None:
    """The loop of `section` (e.g. ("pruning", "train")), or None when there is none."""
    train = doc.get(*section)
    if not isinstance(train, dict) or not train:
        return None
    notes: list[Note] = []
    where = f"{doc.name}:{doc.line(section)}"
    torch = ctx.sym("torch")
    name = ctx.names.fresh(f"{manager}_train")
    ctx.generated.add(name)
    body: list[str] = []
    if optimizer is None:
        opt = dict(train.get("optimizer") or {"SGD": {"learning_rate": 0.001}})
        kind, params = next(iter(opt.items()))
        body.append(f"optimizer = {torch_optimizer(ctx, kind, dict(params or {}), 'model')}")
        optimizer = "optimizer"
    criterion = dict(train.get("criterion") or {})
    loss_name, loss_params = (
        next(iter(criterion.items())) if criterion else ("CrossEntropyLoss", {})
    )
    loss_params = dict(loss_params or {})
    if distillation:
        body.append(f"criterion = {torch}.nn.{student_loss or 'CrossEntropyLoss'}()")
    elif loss_name == "CrossEntropyLoss":
        reduction = loss_params.get("reduction", "mean")
        args = (
            f"reduction={reduction!r}"
            if reduction not in ("mean", "auto", "sum_over_batch_size")
            else ""
        )
        body.append(f"criterion = {torch}.nn.CrossEntropyLoss({args})")
        if loss_params.get("from_logits") is False and "from_logits" in loss_params:
            notes.append(
                (
                    "INFO",
                    f"{where}: `criterion.CrossEntropyLoss.from_logits` is a TensorFlow setting; PyTorch's loss takes logits",
                    line,
                )
            )
    else:
        notes.append(
            (
                "TODO",
                f"{where}: the 1.x loop's criterion `{loss_name}` has no PyTorch counterpart here; CrossEntropyLoss is used",
                line,
            )
        )
        body.append(f"criterion = {torch}.nn.CrossEntropyLoss()")
    start = int(train.get("start_epoch", 0))
    end = int(train["end_epoch"]) if "end_epoch" in train else start + int(train.get("epoch", 1))
    iteration = train.get("iteration")
    for key in ("frequency", "execution_mode", "hostfile", "postprocess"):
        if key in train:
            notes.append(
                (
                    "TODO",
                    f"{where}: `{'.'.join(section)}.{key}` has no counterpart in the written-out loop; not carried over",
                    line,
                )
            )
    if "dataloader" in train:
        notes.append(
            (
                "INFO",
                f"{where}: `{'.'.join(section)}.dataloader` not carried over: the code's train_dataloader replaced it in 1.x too",
                line,
            )
        )
    cb = f"{manager}.callbacks"
    body += [
        f"for epoch in range({start}, {end}):" if start else f"for epoch in range({end}):",
        f"    {cb}.on_epoch_begin(epoch)",
        f"    for step, (inputs, labels) in enumerate({loader}):",
    ]
    if iteration is not None:
        body += [f"        if step >= {int(iteration)}:", "            break"]
    body += [
        f"        {cb}.on_step_begin(step)",
        "        outputs = model(**inputs) if isinstance(inputs, dict) else model(inputs)",
        "        loss = criterion(outputs, labels)",
    ]
    if distillation:
        body.append(f"        loss = {cb}.on_after_compute_loss(inputs, outputs, loss)")
    body += [
        f"        {optimizer}.zero_grad()",
        "        loss.backward()",
        f"        {cb}.on_before_optimizer_step()",
        f"        {optimizer}.step()",
        f"        {cb}.on_after_optimizer_step()",
        f"        {cb}.on_step_end()",
        f"    {cb}.on_epoch_end()",
        "return model",
    ]
    lines = [f"def {name}(model):", *("    " + b for b in body)]
    notes.insert(
        0,
        (
            "INFO",
            f"{where}: the 1.x built-in training loop of `{'.'.join(section)}` is written out as `{name}`",
            line,
        ),
    )
    steps = f"min(len({loader}), {int(iteration)})" if iteration is not None else f"len({loader})"
    return Loop(name, lines, notes, steps)


@dataclass
class Training:
    """How the migrated block trains: the function to call (or None), the lines that
    define it, notes, and the optimizer steps of one epoch as code (when known here)."""

    train: str | None
    pre: list[str]
    notes: list[Note]
    steps: str | None
    pre_notes: list[Note] = field(default_factory=list)  # about the written-out loop


def resolve(
    ctx: Ctx,
    comp: Component,
    doc: yaml_map.YamlDoc | None,
    attrs: Attrs | None,
    section: str,
    manager: str,
    train: str | None,
    *,
    distillation: bool = False,
    student_loss: str | None = None,
    optimizer: str | None = None,
    loader: str | None = None,
) -> Training:
    """The user's train function, or the 1.x built-in loop of `<section>.train` written
    out over the code's `train_dataloader` (`loader`, else the component's), or a TODO."""
    line = ctx.a.line(comp.stmt)
    keys = (section, "train")
    present = doc is not None and doc.has(*keys)
    loop_fields = []
    if present:
        loop_fields = [
            k
            for k in (doc.data[section].get("train") or {})  # type: ignore[union-attr]
            if not (section == "distillation" and k in ("criterion", "optimizer"))
        ]
    where = f"{doc.name}:{doc.line(keys)}" if present else ""  # type: ignore[union-attr]
    if train is not None:
        notes: list[Note] = []
        if loop_fields:
            for k in loop_fields:
                doc.get(section, "train", k)  # type: ignore[union-attr]
            notes.append(
                (
                    "INFO",
                    f"{where}: `{section}.train` ({', '.join(loop_fields)}) not carried over: 1.x ignored it because a train function is set",
                    line,
                )
            )
        return Training(train, [], notes, None)
    if loader is None and attrs is not None:
        loader = attrs.value("train_dataloader")
    if loader is not None and present:
        loop = build(
            ctx,
            doc,
            keys,
            manager,
            loader,
            distillation=distillation,
            student_loss=student_loss,
            optimizer=optimizer,
            line=line,
        )  # type: ignore[arg-type]
        if loop is not None:
            return Training(loop.name, loop.lines, [], loop.steps, loop.notes)
    notes = []
    if loop_fields:
        for k in loop_fields:
            doc.get(section, "train", k)  # type: ignore[union-attr]
        why = (
            "the yaml dataloader cannot be carried over"
            if loader is None
            else "it could not be written out"
        )
        notes.append(
            (
                "TODO",
                f"{where}: `{section}.train` ({', '.join(loop_fields)}) described the 1.x built-in training loop and {why}: set a train_dataloader in code or write the loop (see the TODO below)",
                line,
            )
        )
    return Training(None, [], notes, f"len({loader})" if loader else None)
