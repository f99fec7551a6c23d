"""Where a trained model is final: the place a post-training `fit` belongs.

After the training loop is not enough. The loop may sit in a function that
receives the model (`fit_model(model, loader, ...)`), whose caller goes on with
its own name for it; it may sit in a loop over tasks; and the script may load
the best checkpoint back into the model after training. The place is after all
of that, and something after it must read the model (evaluate, save, return it),
or the quantized model would be thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from neural_coder.transforms import match as m

from .evaluation import is_checkpoint_dict, model_assignment, used_as_module
from .expressions import free_name_nodes, free_names, is_main_guard
from .index import Index, Scope, iter_returns
from .weight_loads import binds, reloads


@dataclass
class FinalModel:
    model: str  # the name the model has at `anchor`
    anchor: cst.BaseStatement
    where: str  # "before" / "after" the anchor
    scope: Scope
    notes: list[str] = field(default_factory=list)
    # a later `model = Net()` that builds a new, untrained model: the trained one is
    # read only up to there
    rebuilt: cst.BaseStatement | None = None


def outermost_loop(
    index: Index, statement: cst.BaseStatement, scope: Scope, model: str | None = None
) -> cst.BaseStatement:
    """`statement`, or the outermost loop of `scope` around it: a `fit` inside a loop
    would run once per task, per dataset or per epoch. Not past a loop that builds
    `model` anew before `statement` (k-fold cross-validation: each fold's model is
    trained, evaluated and saved in its iteration, and fitted there)."""
    src = index.source
    built = [
        a.statement
        for a in (index.assignments_in(model, scope) if model is not None else [])
        if src.line(a.statement) < src.line(statement) and model not in free_names(a.value)
    ]  # `model = model.to(device)` in an epoch loop moves the same model: not a build
    found = statement
    for ancestor in src.ancestors(statement):
        if ancestor is scope:
            break
        if isinstance(ancestor, cst.For | cst.While):
            if any(ancestor in set(src.ancestors(b)) for b in built):
                break
            found = ancestor
    return found


NOT_MODEL_WORDS = ("token", "processor", "config", "feature_extractor", "scheduler")


def is_module_built(index: Index, name: str, what: str) -> bool:
    """Of the constructions analysis calls models, those that are modules for a post-training
    fit: not a tokenizer, processor or config loaded with `from_pretrained`, not a
    checkpoint dict or tensor from `torch.load` that the script never runs as a module."""
    # the class, not its constructor: `AutoModel.from_config(config)` builds a model
    owner = what.removesuffix(".from_config").removesuffix(".from_pretrained")
    if any(word in owner.lower() for word in NOT_MODEL_WORDS):
        return False
    if what.startswith("torch.load"):
        return used_as_module(index, name) and not is_checkpoint_dict(index, name)
    return True


def in_block_of(
    index: Index, statement: cst.BaseStatement, reference: cst.BaseStatement
) -> cst.BaseStatement:
    """The statement around `statement` that sits in the same block as `reference` (the
    `if` holding an evaluation when the model is built outside it), else `statement`."""
    block = index.source.parent(reference)
    node: cst.CSTNode = statement
    for ancestor in index.source.ancestors(statement):
        if index.source.parent(node) is block:
            return node  # type: ignore[return-value]
        if isinstance(ancestor, cst.FunctionDef | cst.ClassDef | cst.Module):
            break
        node = ancestor
    return statement


def out_of_branches(index: Index, statement: cst.BaseStatement, scope: Scope) -> cst.BaseStatement:
    """The outermost `if` / `try` / `with` of `scope` around `statement` (not crossing a
    loop): a model built on one branch (`if resume: ... elif pretrained: ...`) is final
    after the whole statement."""
    found = statement
    for ancestor in index.source.ancestors(statement):
        if ancestor is scope or isinstance(ancestor, cst.For | cst.While | cst.FunctionDef):
            break
        if is_main_guard(ancestor):  # the script's body, not a branch of it
            break
        if isinstance(ancestor, cst.IndentedBlock) and _leaves_the_function(ancestor):
            break  # `if args.eval_only: model = build(); ...; return res`: final in its branch
        if isinstance(ancestor, cst.If | cst.Try | cst.With):
            found = ancestor
    return found


def _leaves_the_function(block: cst.IndentedBlock) -> bool:
    last = block.body[-1] if block.body else None
    return isinstance(last, cst.SimpleStatementLine) and isinstance(
        last.body[-1], cst.Return | cst.Raise
    )


def after_training(index: Index, model: str, loop: cst.BaseStatement, scope: Scope) -> FinalModel:
    """The place after the training loop `loop` (in `scope`, training `model`), moved out
    of the functions and loops that hold it and after any reload of the weights."""
    src = index.source
    place = FinalModel(model, outermost_loop(index, loop, scope, model), "after", scope)
    # the outermost place on the way out through callers where the model is still read
    current, chosen = place, place if later_reads(index, place) else None
    while _is_plain_name(current.model):
        lifted = _to_caller(index, current)
        if lifted is None:
            break
        current = lifted
        if later_reads(index, current):
            chosen = current
    place = chosen or place
    reload = last_reload(index, place)
    if reload is not None:
        place.notes.append(
            f"the model is loaded again at line {src.line(reload)}: quantized after that"
        )
        place.anchor = reload
    place.rebuilt = _first_rebuild(index, place)
    return place


def _first_rebuild(index: Index, place: FinalModel) -> cst.BaseStatement | None:
    """The first statement after the anchor, in its block, that builds the model anew
    without loading trained weights (`model = init_model()`): from there on the name
    holds another model."""
    for statement in _following(index, place):
        if index.source.parent(statement) is not index.source.parent(place.anchor):
            continue
        if reloads(index, statement, place.model, place.scope, rebuilds=True):
            return statement
    return None


def _is_plain_name(model: str) -> bool:
    """`self.model` lives on after the function returns; a local name does not."""
    return "." not in model


def _to_caller(index: Index, place: FinalModel) -> FinalModel | None:
    """The same model seen from the single call site of the function holding `place`:
    a parameter bound to the caller's argument, or a returned name assigned there."""
    fn = index.function(place.scope)
    if fn is None:
        return None
    sites = index.call_sites(fn)
    if len(sites) != 1:
        return None
    call = sites[0]
    caller = index.scope_of(call)
    statement = index.source.statement_of(call)
    model: str | None = None
    argument = index.bind_arguments(call, fn).get(place.model)
    if isinstance(argument, cst.Name | cst.Attribute):
        model = index.source.code(argument)
    elif any(
        m.matches(r.value, m.Name(place.model)) for r in iter_returns(fn.node) if r.value
    ) and m.matches(statement, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget()])])):
        assign = statement.body[0]  # type: ignore[attr-defined]
        model = index.source.code(assign.targets[0].target)
    if model is None:
        return None
    anchor = outermost_loop(index, statement, caller)
    note = f"training runs in {fn.key}() (called at line {index.source.line(call)})"
    return FinalModel(model, anchor, "after", caller, [*place.notes, note])


def _reads_in(node: cst.CSTNode, name: str) -> bool:
    """`name` read anywhere in `node`: as a value, not as a bare assignment target
    (`name.attr = ...` and `name[i] = ...` read it), a keyword (`run(model=other)`) or an
    attribute (`other.model`)."""
    written = {
        id(t.target)  # type: ignore[attr-defined]
        for t in m.findall(
            node, m.AssignTarget(target=m.Name(name)) | m.AnnAssign(target=m.Name(name))
        )
    }
    # `del model, optimizer` (a k-fold loop freeing memory) drops the name: no read
    for deleted in m.findall(node, m.Del()):
        target = deleted.target  # type: ignore[attr-defined]
        items = [e.value for e in target.elements] if isinstance(target, cst.Tuple) else [target]
        written |= {id(t) for t in items if isinstance(t, cst.Name)}
    return any(
        n.value == name and id(n) not in written
        for n in free_name_nodes(node)  # type: ignore[arg-type]
    )


#: what a script does to a model before it runs it: moved, put in eval mode, its weights
#: counted; a fit may come after these
_SETUP_METHODS = frozenset(
    {"to", "cuda", "cpu", "eval", "float", "requires_grad_", "parameters", "named_parameters"}
)


def first_run_after(index: Index, place: FinalModel) -> cst.BaseStatement | None:
    """The first statement of the anchor's block after it that uses `place.model` for more
    than setting it up (`model = model.to(device)`, `model.eval()`, counting its
    parameters): where an evaluation-only script starts running the model. None when the
    block ends first or the model is a dotted name."""
    if "." in place.model or place.where != "after":
        return None
    src = index.source
    block = src.parent(place.anchor)
    body = getattr(block, "body", None)
    if not isinstance(body, list | tuple) or place.anchor not in body:
        return None
    for statement in body[body.index(place.anchor) + 1 :]:
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            continue
        for name in free_name_nodes(statement):  # type: ignore[arg-type]
            if name.value != place.model:
                continue
            parent = src.parent(name)
            if isinstance(parent, cst.AssignTarget):
                if not _reads_in(statement, place.model):
                    return None  # built anew: what runs later is another model
                continue  # `model = model.to(device)`: its value is looked at as a read
            setup = (
                isinstance(parent, cst.Attribute)
                and parent.value is name
                and parent.attr.value in _SETUP_METHODS
            )
            if not setup and not _part_assigned(index, name):
                return statement
    return None


def _part_assigned(index: Index, name: cst.Name) -> bool:
    """`name` is the model whose part is replaced or removed (`model.fc = nn.Identity()`,
    `model.head.bias.data[:] = 0`, `del model.classifier`): building it, not running it."""
    parent_of = index.source.parent
    node: cst.CSTNode = name
    parent = parent_of(node)
    while isinstance(parent, cst.Attribute | cst.Subscript) and parent.value is node:
        node, parent = parent, parent_of(parent)
    if node is name:
        return False
    if isinstance(parent, cst.AssignTarget | cst.AugAssign | cst.AnnAssign | cst.Del):
        return parent.target is node
    return False


def _following(index: Index, place: FinalModel) -> list[cst.BaseStatement]:
    """The statements of `place.scope` that run after the anchor, in order: its later
    siblings, then those of every enclosing block up to the scope."""
    src = index.source
    out: list[cst.BaseStatement] = []
    node: cst.CSTNode = place.anchor
    for ancestor in src.ancestors(place.anchor):
        body = getattr(ancestor, "body", None)
        statements = body if isinstance(body, list | tuple) else None
        if statements is not None and node in statements:
            start = statements.index(node) + (1 if place.where == "after" else 0)
            for s in statements[start:]:
                if s is place.rebuilt:
                    return out
                if isinstance(s, cst.BaseStatement):
                    out.append(s)
        if ancestor is place.scope:
            break
        if isinstance(ancestor, cst.BaseStatement):
            node = ancestor
    return out


def later_reads(index: Index, place: FinalModel, depth: int = 0) -> list[cst.BaseStatement]:
    """Statements after the anchor that read the model: directly, or (at module level)
    through a function they call that reads it as a global."""
    head = place.model.split(".")[0]
    found = []
    for statement in _following(index, place):
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            continue
        if _returned_and_dropped(index, statement, head, place.scope, depth):
            continue
        if _reads_in(statement, head) or _calls_reader_of_global(index, statement, head, place):
            found.append(statement)
    return found


def _returned_and_dropped(
    index: Index, statement: cst.BaseStatement, name: str, scope: Scope, depth: int
) -> bool:
    """`return model, history` whose every caller drops the model: `model, history =
    run_training(model, ...)` then only `del model` (a k-fold loop's next fold), or the
    result not kept at all. A function nothing in the file calls keeps its return a read."""
    fn = index.function(scope)
    returned = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
    if fn is None or depth > 1 or not isinstance(returned, cst.Return) or returned.value is None:
        return False
    value = returned.value
    if m.matches(value, m.Name(name)):
        position = None
    elif isinstance(value, cst.Tuple) and any(
        m.matches(e.value, m.Name(name)) for e in value.elements
    ):
        position = next(i for i, e in enumerate(value.elements) if m.matches(e.value, m.Name(name)))
    else:
        return False
    sites = index.call_sites(fn)
    if not sites:
        return False
    for call in sites:
        kept = _name_kept_from(index, call, position)
        if kept is None:
            return False
        caller, held = kept
        if held is not None and later_reads(
            index, FinalModel(held, caller, "after", index.scope_of(call)), depth + 1
        ):
            return False
    return True


def _name_kept_from(
    index: Index, call: cst.Call, position: int | None
) -> tuple[cst.BaseStatement, str | None] | None:
    """The caller's statement holding `call` and the name it binds the returned model to
    (None: the result is dropped); None when the model goes somewhere else."""
    statement = index.source.statement_of(call)
    small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
    if isinstance(small, cst.Expr) and small.value is call:
        return statement, None
    if not isinstance(small, cst.Assign) or small.value is not call or len(small.targets) != 1:
        return None
    target = small.targets[0].target
    if position is not None:
        if not isinstance(target, cst.Tuple) or len(target.elements) <= position:
            return None
        target = target.elements[position].value
    return (statement, target.value) if isinstance(target, cst.Name) else None


def _calls_reader_of_global(
    index: Index, statement: cst.BaseStatement, name: str, place: FinalModel
) -> bool:
    if place.scope is not index.source.module:
        return False
    for call in m.findall(statement, m.Call()):
        fn = index.resolve_call(call)  # type: ignore[arg-type]
        if fn is None or name in fn.all_params() or index.assignments_in(name, fn.node):
            continue
        if _reads_in(fn.node.body, name):
            return True
    return False


def last_reload(
    index: Index, place: FinalModel, rebuilds: bool = False
) -> cst.BaseStatement | None:
    """The last statement after the anchor, in the anchor's block, that loads weights
    into the model again (`model.load_state_dict(...)`, `model = torch.load(f)`), or
    holds such a load; with `rebuilds`, also one that builds it anew (`model = Net()`)."""
    name = place.model
    last = None
    for statement in _following(index, place):
        if reloads(index, statement, name, place.scope, rebuilds):
            if index.source.parent(statement) is index.source.parent(place.anchor):
                last = statement
    return last


def weights_reloaded_after(
    index: Index, model: str, training: cst.BaseStatement, scope: Scope
) -> cst.BaseStatement | None:
    """The last statement after `training`, in its block, that loads weights into `model`
    in place (`model.load_state_dict(torch.load(best))`): the best checkpoint saved
    during training, brought back before the model is used. A re-binding (`model =
    torch.load(f)`) is a new object, not counted, and so is a load into a model built
    anew in between (`net = Net(); net.load_state_dict(torch.load(PATH))`, the tutorials'
    reload of what they saved)."""
    place = FinalModel(model, training, "after", scope)
    reload = last_reload(index, place)
    if reload is None or binds(reload, model):
        return None
    for statement in _following(index, place):
        if statement is reload:
            break
        if binds(statement, model):
            return None
    return reload


@dataclass
class CallerBuilt:
    """A model that a function receives as a parameter, seen where a caller builds it."""

    model: str  # its name in the caller
    statement: cst.BaseStatement  # the caller's statement that passes it on
    built: cst.BaseStatement  # the caller's assignment of it
    scope: Scope
    path: list[str]  # "extract_pipeline() -> extract_features()"


def built_by_caller(index: Index, model: str, scope: Scope, depth: int = 0) -> CallerBuilt | None:
    """For `model`, a parameter of the function `scope`: the first call site (through
    callers that pass it on in turn) whose function builds the model before the call
    (`model = build(); features = extract(model, loader)`)."""
    fn = index.function(scope)
    if fn is None or model not in fn.all_params() or depth > 4:
        return None
    for call in sorted(index.call_sites(fn), key=index.source.line):
        argument = index.bind_arguments(call, fn).get(model)
        if not isinstance(argument, cst.Name | cst.Attribute):
            continue
        name = index.source.code(argument)
        caller = index.scope_of(call)
        statement = index.source.statement_of(call)
        built = model_assignment(index, name, caller, index.source.line(call))
        caller_fn = index.function(caller)
        where = f"{caller_fn.key}()" if caller_fn else "module level"
        if built is not None:
            return CallerBuilt(name, statement, built, caller, [where, f"{fn.key}()"])
        outer = built_by_caller(index, name, caller, depth + 1)
        if outer is not None:
            outer.path.append(f"{fn.key}()")
            return outer
    return None


def dropped_by_callers(index: Index, name: str, scope: Scope) -> bool:
    """Every return of `scope`'s function hands back `name`, and every caller drops it."""
    fn = index.function(scope)
    returns = [] if fn is None else [r for r in iter_returns(fn.node) if r.value is not None]
    return bool(returns) and all(
        _returned_and_dropped(index, index.source.parent(r), name, scope, 0)  # type: ignore[arg-type]
        for r in returns
    )
