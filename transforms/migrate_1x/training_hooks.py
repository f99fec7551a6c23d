"""The 2.x hooks inside a 1.x component's training code for pruning: `on_after_optimizer_step()`
after each `optimizer.step()`, and the step hooks 2.x pruning needs where the loop has none."""

from __future__ import annotations

import libcst as cst

from .analysis import Component
from .codegen import code_of
from .findings import Kind
from .plan import Ctx, calls_in, loader_of, optimizer_steps, step_index

Note = tuple[Kind, str, int | None]


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
