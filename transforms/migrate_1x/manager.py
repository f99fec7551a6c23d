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
from .codegen import code_of
from .findings import Kind
from .plan import (
    HOOKS,
    Ctx,
    calls_in,
    follow_function,
    hook_calls,
    inside,
    loader_of,
    optimizer_steps,
    step_index,
)

if TYPE_CHECKING:
    from .builtin_loop import Training

Note = tuple[Kind, str, int | None]


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


def _name_in(
    ctx: Ctx, manager: str, group: list[Component], scope: object, fit_scope: object
) -> str | None:
    """The manager's name as seen from `scope`: a parameter it is passed in as, or its own."""
    for comp in group:
        for alias in comp.family():
            if alias.alias_of is not None and alias.scope is scope:
                return alias.name
    return manager if ctx.a.visible(manager, scope, fit_scope) else None  # type: ignore[arg-type]


def _pruning_hooks(
    ctx: Ctx,
    manager: str,
    group: list[Component],
    train_fn: object,
    fit_scope: object,
    called: set[str],
    fit_stmt: cst.BaseStatement,
    steps_var: str | None,
    given_steps: str | None = None,
    train: str | None = None,
) -> tuple[list[str], list[Note], list[Note]]:
    """2.x pruning advances through on_after_optimizer_step(): add it after each
    optimizer step (and the step hooks 2.x pruning needs when the loop has none).
    Returns the `steps_per_epoch = len(loader)` line when the config needs it, the
    notes about that line, and the notes about the block."""
    a = ctx.a
    line = a.line(fit_stmt)
    steps = optimizer_steps(ctx, train_fn)  # type: ignore[arg-type]
    notes: list[Note] = []
    loader: str | None = None
    accumulation = False
    if not steps and train_fn.defs:  # type: ignore[attr-defined]
        notes.append(
            (
                "TODO",
                f"no `optimizer.step()` found in the training function: call `{manager}.callbacks.on_after_optimizer_step()` after each optimizer step (2.x pruning advances only through it)",
                line,
            )
        )
    elif not steps and train is not None and train not in ctx.generated:
        notes.append(
            (
                "TODO",
                f"`{train}` is not a function of this file the tool can follow: make sure its loop calls `{manager}.callbacks.on_after_optimizer_step()` after each optimizer step (2.x pruning advances only through it)",
                line,
            )
        )
    for step in steps:
        fn_scope = a.scope(step)
        name = _name_in(ctx, manager, group, fn_scope, fit_scope)
        if name is None:
            ctx.note(
                step,
                "TODO",
                f"call `{manager}.callbacks.on_after_optimizer_step()` after this step (2.x pruning advances only through it); `{manager}` is not visible here",
            )
            continue
        if not _next_is(ctx, step, "on_after_optimizer_step"):
            ctx.after(step, _marked(ctx, [f"{name}.callbacks.on_after_optimizer_step()"], step))
        if "on_before_optimizer_step" not in called:
            ctx.before(step, _marked(ctx, [f"{name}.callbacks.on_before_optimizer_step()"], step))
            ctx.note(
                step,
                "INFO",
                "added on_before_optimizer_step() before the optimizer step (2.x gradient-based pruning criteria read the gradients there)",
            )
        loop = a.loop_of(step)
        if loop is not None and "on_step_begin" not in called:
            body = loop.body
            if isinstance(body, cst.IndentedBlock) and body.body:
                index = step_index(loop) if isinstance(loop, cst.For) else None
                first = body.body[0]
                ctx.before(
                    first, _marked(ctx, [f"{name}.callbacks.on_step_begin({index or 0})"], first)
                )
                ctx.note(
                    step,
                    "INFO",
                    "added on_step_begin() at the top of the training step (2.x pruning updates its masks there)",
                )
        if isinstance(loop, cst.For) and loader is None:
            node = loader_of(ctx, loop)
            if node is not None:
                loader = _visible_code(ctx, node, a.scope(loop), fit_scope)
            for anc in a.ancestors(step):
                if anc is loop:
                    break
                accumulation = accumulation or isinstance(anc, cst.If)
    called.add("on_step_begin")
    if steps_var is None:
        return [], [], notes
    steps_notes: list[Note] = []
    if loader is None and given_steps is not None:
        return [f"{steps_var} = {given_steps}"], steps_notes, notes
    if loader is not None:
        if accumulation:
            steps_notes.append(
                (
                    "TODO",
                    f"the optimizer steps under a condition (gradient accumulation?): `{steps_var}` counts batches, set it to the optimizer steps of one epoch",
                    line,
                )
            )
        return [f"{steps_var} = len({loader})"], steps_notes, notes
    steps_notes.append(
        (
            "TODO",
            f"set `{steps_var}` to the number of optimizer steps in one epoch (the 1.x yaml counts epochs, 2.x counts steps); no dataloader visible here to count them",
            line,
        )
    )
    return [f"{steps_var} = 1"], steps_notes, notes


def _visible_code(
    ctx: Ctx, node: cst.BaseExpression, scope: object, fit_scope: object, depth: int = 3
) -> str | None:
    """`node`'s code if it means the same at the fit site; a parameter is followed to
    the one argument every call of its function passes (`train(model, train_loader)`)."""
    a = ctx.a
    if all(a.same_binding(n, scope, fit_scope) for n in a.names_in(node)):  # type: ignore[arg-type]
        return code_of(node)
    if depth == 0 or not isinstance(node, cst.Name):
        return None
    fn = a.enclosing_function(node)
    if fn is None:
        return None
    params = [*fn.params.posonly_params, *fn.params.params]
    index = next((i for i, p in enumerate(params) if p.name.value == node.value), None)
    if index is None:
        return None
    found: set[str] = set()
    for call in calls_in(a.module):
        if not (isinstance(call.func, cst.Name) and call.func.value == fn.name.value):
            continue
        if a.function_named(fn.name.value, a.scope(call)) is not fn:
            continue
        arg = next(
            (x for x in call.args if x.keyword is not None and x.keyword.value == node.value), None
        )
        if arg is None:
            positional = [x for x in call.args if x.keyword is None and not x.star]
            arg = positional[index] if index < len(positional) else None
        if arg is None:
            return None
        code = _visible_code(ctx, arg.value, a.scope(call), fit_scope, depth - 1)
        if code is None:
            return None
        found.add(code)
    return found.pop() if len(found) == 1 else None


def _next_is(ctx: Ctx, stmt: cst.SimpleStatementLine, hook: str) -> bool:
    parent = ctx.a.parent(stmt)
    body = getattr(parent, "body", None)
    if not isinstance(body, list | tuple):
        return False
    index = next(i for i, s in enumerate(body) if s is stmt)
    if index + 1 >= len(body):
        return False
    return f".{hook}(" in code_of(body[index + 1])


def _marked(ctx: Ctx, lines: list[str], at: cst.BaseStatement) -> list[cst.BaseStatement]:
    """Statements inserted into the user's loop carry the `# neural-coder` marker."""
    from neural_coder.transforms.snippets import MARKER

    out = []
    for s in ctx.gen(lines, at):
        if isinstance(s, cst.SimpleStatementLine):
            s = s.with_changes(
                trailing_whitespace=cst.TrailingWhitespace(
                    whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(MARKER)
                )
            )
        out.append(s)
    return out
