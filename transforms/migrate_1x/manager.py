"""The 2.x training block that replaces a 1.x training component's `fit()`:

    conf = WeightPruningConfig(...)                 # one per technique
    prune = prepare_compression(model, conf)        # the component's name becomes the manager
    prune.callbacks.on_train_begin()                # unless the training function calls it
    model = prune.model
    train_func(model)
    prune.callbacks.on_train_end()
    pruned_model = prune.model                      # what fit() returned

and the hooks inside the training code: `prune.on_epoch_begin(e)` ->
`prune.callbacks.on_epoch_begin(e)`, plus `on_after_optimizer_step()` after each
`optimizer.step()` where pruning needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import GlobalScope

from . import yaml_map
from .analysis import Component, Use
from .plan import HOOKS, Ctx, follow_function, hook_calls, inside
from .training_hooks import Note, _pruning_hooks

if TYPE_CHECKING:
    from .builtin_loop import Training


@dataclass
class Technique:
    """One 2.x config of the block: the statements that build it and the notes about it."""

    kind: str  # pruning | distillation | qat
    comp: Component
    lines: list[str]
    conf: str  # the variable holding the config
    notes: list[Note] = field(default_factory=list)
    steps_var: str | None = None  # pruning with epoch-based settings


def yaml_notes(
    ctx: Ctx, doc: yaml_map.YamlDoc | None, notes: yaml_map.Notes, comp: Component
) -> list[Note]:
    line = ctx.a.line(comp.stmt)
    out: list[Note] = []
    for n in notes:
        where = (
            f"{doc.name}:{doc.line(n.keys)}"
            if doc is not None and doc.line(n.keys)
            else (doc.name if doc else "")
        )
        out.append((n.kind, f"{where}: {n.message}" if where else n.message, line))
    return out


def yaml_only_loader(
    doc: yaml_map.YamlDoc, keys: yaml_map.Keys, what: str, pass_as: str, line: int
) -> Note:
    """A TODO: the dataloader at `keys` (marked read) exists only in the yaml."""
    doc.get(*keys)
    return (
        "TODO",
        f"{doc.name}:{doc.line(keys)}: the {what} dataloader exists only in the yaml; build it in code and pass {pass_as}",
        line,
    )


def yaml_loader_replaced(doc: yaml_map.YamlDoc, keys: yaml_map.Keys, by: str, line: int) -> Note:
    """An INFO: the code's data replaces the yaml's dataloader at `keys`, as in 1.x."""
    doc.get(*keys)
    return (
        "INFO",
        f"{doc.name}: `{yaml_map.dotted(keys)}` not carried over: the code's {by} replaced it in 1.x too",
        line,
    )


def fit_uses(comp: Component) -> list[Use]:
    return [u for u in comp.uses if u.kind == "direct" or (u.kind == "call" and u.attr == "fit")]


def emit_manager(
    ctx: Ctx,
    *,
    manager: str,
    techniques: list[Technique],
    group: list[Component],
    model: str | None,
    train: str | None,
    fit: Use,
    pre: list[str] | None = None,
    steps: str | None = None,
    pre_notes: list[Note] | None = None,
) -> str:
    """Emit the block before the fit statement; returns the expression for fit()'s value.

    `steps`: the optimizer steps of one epoch as code, when the caller knows them (a
    written-out 1.x loop); otherwise they are counted from the training loop's dataloader.
    """
    a = ctx.a
    stmt = fit.stmt
    fit_scope = a.scope(stmt)
    line = a.line(stmt)
    train_fn = follow_function(ctx, train, fit_scope)
    # where the manager's name is bound: the fit's scope, or the module when the
    # component lived there (then the function that runs fit() declares it global)
    declare_global = _needs_global(ctx, manager, group, stmt)
    manager_scope = (
        next(c.scope for c in group if c.name == manager) if declare_global else fit_scope
    )
    has = {t.kind for t in techniques}

    # hooks the user calls: rename to the manager's callbacks
    called: set[str] = set()
    for owner, use in hook_calls(group):
        new = HOOKS[use.attr or ""]
        receiver = _receiver(ctx, manager, owner, use, manager_scope)
        if receiver is None:
            ctx.note(
                use.stmt,
                "TODO",
                f"`{use.name.value}.{use.attr}()` becomes `{manager}.callbacks.{new}()`, but `{manager}` is not visible here; pass the compression manager in",
            )
            ctx.handled.add(id(use.name))
            continue
        if new == "on_after_compute_loss" and "distillation" not in has:
            ctx.note(
                use.stmt,
                "TODO",
                f"`{use.name.value}.on_after_compute_loss()` only changes the loss with distillation; 2.x returns [] here, use your own loss",
            )
            ctx.handled.add(id(use.name))
            continue
        call = use.node
        assert isinstance(call, cst.Call)
        ctx.replace_expr(call.func, lambda _u, m=receiver, n=new: _callbacks(m, n))
        ctx.handled.add(id(use.name))
        if inside(ctx, use.stmt, train_fn.defs) or not train_fn.defs:
            called.add(new)
    for use in (
        u
        for c in group
        for m in c.family()
        for u in m.uses
        if u.kind == "call" and u.attr == "on_post_forward"
    ):
        if isinstance(use.stmt, cst.SimpleStatementLine) and len(use.stmt.body) == 1:
            ctx.note(
                use.stmt,
                "INFO",
                "`on_post_forward()` removed: 2.x runs the teacher inside on_after_compute_loss",
            )
            ctx.remove(use.stmt)
            ctx.handled.add(id(use.name))

    # `prune.model` read after fit() (or inside a function): the manager's model, valid 2.x
    fit_at = a.pos(stmt)
    for c in group:
        for use in c.uses:
            if (
                use.kind == "read"
                and use.attr == "model"
                and (use.scope is not fit_scope or a.pos(use.stmt) > fit_at)
            ):
                ctx.handled.add(id(use.name))

    lines: list[tuple[list[str], list[Note]]] = []
    if pre:
        lines.append((pre, pre_notes or []))
    steps_vars = [t.steps_var for t in techniques if t.steps_var]
    notes: list[Note] = []
    if "pruning" in has:
        steps_lines, steps_notes, notes = _pruning_hooks(
            ctx,
            manager,
            group,
            train_fn,
            manager_scope,
            called,
            stmt,
            steps_vars[0] if steps_vars else None,
            steps,
            train,
        )
        if steps_lines:
            lines.append((steps_lines, steps_notes))
    for t in techniques:
        lines.append((t.lines, t.notes))

    prepare = ctx.sym("prepare_compression")
    confs = (
        techniques[0].conf
        if len(techniques) == 1
        else "[" + ", ".join(t.conf for t in techniques) + "]"
    )
    block: list[str] = []
    model_code = model or "model"
    if model is None:
        notes.append(
            ("TODO", f"`{manager}` has no model set in code; set the model to compress here", line)
        )
    block.append(f"{manager} = {prepare}({model_code}, {confs})")
    if declare_global:
        _declare_global(ctx, manager, stmt)
    begin_here = "on_train_begin" not in called
    if begin_here:
        block.append(f"{manager}.callbacks.on_train_begin()")
    arg = f"{manager}.model"
    if (
        begin_here
        and model is not None
        and model.isidentifier()
        and (a.binds(model, fit_scope) or ctx.is_global(fit_scope))
    ):
        block.append(f"{model} = {manager}.model")
        arg = model
    if train is not None:
        block.append(f"{train}({arg})")
    else:
        notes.append(
            (
                "TODO",
                "1.x trained with its built-in loop from the yaml `train` section; 2.x has no built-in loop: train the model here, calling the callbacks",
                line,
            )
        )
    if "on_train_end" not in called:
        block.append(f"{manager}.callbacks.on_train_end()")
    lines.append((block, notes))
    generated = _spaced([s for chunk, n in lines for s in ctx.gen(chunk, stmt, n)], a.scope(stmt))
    ctx.before(stmt, generated)
    return f"{manager}.model"


def emit_single(
    ctx: Ctx,
    comp: Component,
    fit: Use,
    technique: Technique,
    model: str | None,
    training: Training,
    pre: list[str] | None = None,
) -> str:
    """`emit_manager` for one component's technique, trained by `training` (the user's
    train function, or the 1.x built-in loop written out before the block)."""
    technique.notes += training.notes
    return emit_manager(
        ctx,
        manager=comp.name,
        techniques=[technique],
        group=[comp],
        model=model,
        train=training.train,
        fit=fit,
        pre=[*(pre or []), *training.pre] or None,
        pre_notes=training.pre_notes,
        steps=training.steps,
    )


def _needs_global(ctx: Ctx, manager: str, group: list[Component], stmt: cst.BaseStatement) -> bool:
    """The component lived at module level and fit() runs in a function (directly in
    its body, where the name is not a parameter)."""
    a = ctx.a
    owner = next((c for c in group if c.name == manager), None)
    fn = a.enclosing_function(stmt)
    if (
        owner is None
        or fn is None
        or not ctx.is_global(owner.scope)
        or a.scope(stmt) is owner.scope
    ):
        return False
    if not isinstance(fn.body, cst.IndentedBlock) or a.scope(stmt) is not a.scopes.get(fn.body):
        return False
    params = (*fn.params.posonly_params, *fn.params.params, *fn.params.kwonly_params)
    return manager not in [p.name.value for p in params]


def _declare_global(ctx: Ctx, manager: str, stmt: cst.BaseStatement) -> None:
    """`global <manager>` first in the function that runs fit(), so that the manager
    rebinds the module-level name the other functions read."""
    fn = ctx.a.enclosing_function(stmt)
    assert fn is not None and isinstance(fn.body, cst.IndentedBlock)
    body = list(fn.body.body)
    first = body[0]
    if _is_docstring(first) and len(body) > 1:
        first = body[1]
    ctx.before(first, ctx.gen([f"global {manager}"], first))


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _spaced(stmts: list[cst.BaseStatement], scope: object) -> list[cst.BaseStatement]:
    """Blank lines around a generated `def` (two at module level, one inside a function)."""
    blank = [cst.EmptyLine()] * (2 if isinstance(scope, GlobalScope) else 1)
    out = list(stmts)
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, cst.FunctionDef):
            out[i] = out[i].with_changes(leading_lines=[*blank, *out[i].leading_lines])
            if i + 1 < len(out):
                out[i + 1] = out[i + 1].with_changes(
                    leading_lines=[*blank, *out[i + 1].leading_lines]
                )
    return out


def _callbacks(manager: str, hook: str) -> cst.Attribute:
    return cst.Attribute(
        value=cst.Attribute(value=cst.Name(manager), attr=cst.Name("callbacks")),
        attr=cst.Name(hook),
    )


def _receiver(ctx: Ctx, manager: str, owner: Component, use: Use, fit_scope: object) -> str | None:
    """The name that holds the compression manager where `use` is (None: none does)."""
    if owner.alias_of is not None:
        return use.name.value  # a parameter the component (now the manager) is passed in as
    if use.name.value == manager and owner.scope is fit_scope:
        return manager
    return manager if ctx.a.visible(manager, use.scope, fit_scope) else None  # type: ignore[arg-type]
