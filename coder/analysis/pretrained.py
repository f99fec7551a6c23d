"""Whether a model holds trained weights before training starts.

The default distillation teacher is a frozen copy of the student. That copy only
teaches something when the model is loaded trained: a fine-tuned checkpoint
(`from_pretrained(path)`), `load_state_dict` of trained weights, a module loaded
whole (`torch.load`), a helper that loads a checkpoint into it. A model built
from its class or config is random; a pretrained backbone given a new head
(`num_labels=k`, `model.fc = nn.Linear(...)`) has a random head.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds
from .expressions import is_main_guard
from .flag_defaults import DefaultRun, add_argument_of
from .index import Index, Scope
from .wraps import values_through_wraps

FRESH_HEAD_KEYWORDS = ("num_labels", "num_classes", "ignore_mismatched_sizes")
#: keywords that size the head: a fine-tuned checkpoint with a head of that size keeps it
HEAD_SIZE_KEYWORDS = ("num_labels", "num_classes")
#: calls that build a filesystem path (a hub model id is never built with them)
PATH_BUILDERS = ("os.path.join", "Path", "pathlib.Path", "join")
#: words of a folder name that a fine-tuning run writes (`outputs/best`, `sst2-finetuned`)
FINE_TUNED_WORDS = (
    "output",
    "checkpoint",
    "ckpt",
    "best",
    "finetune",
    "fine-tune",
    "trained",
    "save",
)
#: what writes a fine-tuned model to a folder the script may load it back from
SAVE_CALLS = ("save_pretrained", "save_model")
HEAD_NAMES = ("fc", "classifier", "head", "heads", "score", "lm_head", "last_linear")
PRETRAINED_KEYWORDS = ("pretrained", "weights")
LOAD_WORDS = ("load", "restore")


@dataclass
class Weights:
    trained: bool
    why: str  # "loaded by model.load_state_dict(...) at line 40", "built by Net() at line 12"


def weights_before_training(
    index: Index, model: str, scope: Scope, training: cst.CSTNode
) -> Weights:
    """What `model` (as written in `scope`) holds when `training` (the loop, or the
    Trainer construction) starts."""
    src = index.source
    leaves = [
        leaf
        for leaf, _ in values_through_wraps(index, cst.parse_expression(model), scope)
        if leaf in src.positions
    ]
    ids = {id(leaf) for leaf in leaves}
    start = _start_line(index, scope, training)
    conditional: Weights | None = None
    for call in index.calls:  # a load that always runs wins over one under an `if`
        if call not in src.positions:
            continue
        # a load in the function that trains runs before its loop even when the
        # function's own call comes earlier in the file (`main()` above `main_worker`)
        in_scope = index.scope_of(call) is scope
        if src.line(call) >= (src.line(training) if in_scope else start):
            continue
        if _loads_into(index, call, ids):
            what = f"{src.code(call.func)}(...) at line {src.line(call)}"
            test = _condition_through_callers(index, call)
            if test is None:
                return Weights(True, f"trained weights loaded by {what}")
            condition = src.code(test)
            found = _by_default(
                index, test, call, f"trained weights loaded by {what} when {condition}"
            )
            if found is not None:
                return found
            conditional = conditional or Weights(
                False, f"trained weights are loaded only when {condition} ({what})"
            )
    if conditional is not None:
        return conditional
    built = [leaf for leaf in leaves if kinds.model_kind(index, leaf) is not None]
    if not built:
        return Weights(False, f"where {model} comes from could not be read")
    leaf = built[0]
    what = f"{kinds.model_kind(index, leaf)} at line {src.line(leaf)}"
    assert isinstance(leaf, cst.Call)
    name = kinds.callee(index, leaf) or ""
    last = name.rsplit(".", 1)[-1]
    if name == "torch.load":
        return Weights(True, f"a trained module loaded whole by {what}")
    if last == "load_from_checkpoint":
        return Weights(True, f"a trained Lightning checkpoint loaded by {what}")
    fresh = _fresh_head(index, leaf, ids, training)
    if last == "from_pretrained":
        if fresh and fresh.startswith(HEAD_SIZE_KEYWORDS):
            return _sized_head(index, leaf, fresh, what)
        if fresh:
            return Weights(
                False, f"the checkpoint gets a new, randomly initialised head ({fresh}, {what})"
            )
        return Weights(True, f"a trained checkpoint loaded by {what}")
    pretrained = [a for a in leaf.args if a.keyword and a.keyword.value in PRETRAINED_KEYWORDS]
    for a in pretrained:
        flag = flag_off_by_default(index, a.value)
        if flag is not None:
            return Weights(
                False,
                f"pretrained weights are loaded only when {flag} is given "
                f"({a.keyword.value}={src.code(a.value)} in {what}; off by default)",  # type: ignore[union-attr]
            )
    if pretrained and not all(src.code(a.value) in ("False", "None") for a in pretrained):
        if fresh:
            return Weights(
                False, f"the pretrained model gets a new, randomly initialised head ({fresh})"
            )
        return _on_its_branch(index, leaf, len(built) > 1) or Weights(
            True, f"pretrained weights requested by {what}"
        )
    return Weights(False, f"the model is randomly initialised ({what})")


def _sized_head(index: Index, leaf: cst.Call, size: str, what: str) -> Weights:
    """`from_pretrained(path, num_labels=2)`: the head is new and random for a base model
    (a hub model id), and the checkpoint's own for a model fine-tuned with that head (a
    folder the script writes, or a local path); else either, and the reason says so."""
    src = index.source
    path = _pretrained_path(leaf)
    if path is None:
        return Weights(
            False, f"the checkpoint gets a new, randomly initialised head ({size}, {what})"
        )
    where = _checkpoint_place(index, leaf, path)
    if where == "local":
        return Weights(
            True, f"a fine-tuned checkpoint loaded from a folder by {what} ({size}: its own head)"
        )
    if where == "hub":
        return Weights(
            False,
            f"{src.code(path)} names a hub model, not a fine-tuned folder: it gets a new, "
            f"randomly initialised head ({size}, {what})",
        )
    return Weights(
        False,
        f"the head may be new and randomly initialised ({size}, {what}): it is unless the "
        f"checkpoint at {src.code(path)} was fine-tuned with a head of that size",
    )


def _pretrained_path(leaf: cst.Call) -> cst.BaseExpression | None:
    """The checkpoint `from_pretrained` loads: its first argument."""
    for arg in leaf.args:
        if arg.keyword is None and not arg.star:
            return arg.value
        if arg.keyword is not None and arg.keyword.value == "pretrained_model_name_or_path":
            return arg.value
    return None


def _checkpoint_place(index: Index, leaf: cst.Call, path: cst.BaseExpression) -> str | None:
    """Where `path` is: "local" for a folder (a path literal, a path built with `os.path.join` /
    `Path` / `/`, or one the script saves a model to), "hub" when it is a model id of the
    hub (a literal that is no path), None when it cannot be told."""
    src = index.source
    code = src.code(path)
    for call in index.calls:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in SAVE_CALLS and call.args:
            if src.code(call.args[0].value) == code:
                return "local"
        if any(
            a.keyword and a.keyword.value == "output_dir" and src.code(a.value) == code
            for a in call.args
        ):
            return "local"
    if isinstance(path, cst.BinaryOperation | cst.FormattedString) or (
        isinstance(path, cst.Call) and index.qualified(path.func) in PATH_BUILDERS
    ):
        return "local"
    value = DefaultRun(index, index.scope_of(leaf)).value(path, src.line(leaf), 0)
    if not isinstance(value, str) or not value:
        return None
    if value.startswith((".", "/", "~")) or "\\" in value:
        return "local"
    lowered = value.lower()
    return None if any(word in lowered for word in FINE_TUNED_WORDS) else "hub"


def _by_default(
    index: Index, test: cst.BaseExpression, at: cst.CSTNode, what: str
) -> Weights | None:
    """Trained weights (`what`) when the script's default flags make `test` true."""
    default_run = DefaultRun(index, index.scope_of(at))
    if not default_run.holds(test, index.source.line(test)):
        return None
    flags = " / ".join(default_run.flags)
    return Weights(
        True,
        f"{what}, which the default {flags} makes true; with another {flags} the teacher "
        "may be untrained",
    )


def _on_its_branch(index: Index, leaf: cst.Call, other_paths: bool) -> Weights | None:
    """`if args.pretrained: model = resnet18(pretrained=True) else: model = resnet18()`:
    the weights are trained on one branch only; None when the build always runs."""
    test = _condition(index, leaf)
    if test is None or not other_paths:
        return None
    src = index.source
    branch = next(a for a in src.ancestors(leaf) if isinstance(a, cst.If))
    if not any(a is branch.body for a in src.ancestors(leaf)):
        return None  # built on the else path: the test says when it is not
    what = f"line {src.line(leaf)}, when {src.code(test)}"
    found = _by_default(index, test, leaf, f"pretrained weights requested at {what}")
    if found is not None:
        return found
    return Weights(
        False,
        f"pretrained weights are requested only at {what}; the other path builds a "
        "randomly initialised model",
    )


def _loads_into(index: Index, call: cst.Call, ids: set[int]) -> bool:
    """`m.load_state_dict(...)`, or a loading helper given the model
    (`load_checkpoint(path, model)`, `model = load_weights(model, path)`)."""
    func = call.func
    scope = index.scope_of(call)
    if isinstance(func, cst.Attribute) and func.attr.value in (
        "load_state_dict",
        "from_pretrained",
    ):
        if func.attr.value == "load_state_dict":
            return bool(_ids(index, func.value, scope) & ids)
        return False
    last = index.qualified(func).rsplit(".", 1)[-1].lower()
    if not any(word in last for word in LOAD_WORDS) or last in ("load", "torch.load"):
        return False
    return any(_ids(index, a.value, scope) & ids for a in call.args)


def _fresh_head(index: Index, leaf: cst.Call, ids: set[int], training: cst.CSTNode) -> str | None:
    """A new head: a keyword that sizes it, or an assignment that replaces it (outside
    the training itself)."""
    src = index.source

    def outside(node: cst.CSTNode) -> bool:
        return all(ancestor is not training for ancestor in src.ancestors(node))

    for arg in leaf.args:
        if arg.keyword and arg.keyword.value in FRESH_HEAD_KEYWORDS:
            if src.code(arg.value) not in ("False", "None"):
                return f"{arg.keyword.value}={src.code(arg.value)}"
    for assignments in index.assignments.values():
        for a in assignments:
            target = cst.parse_expression(a.target)
            if not isinstance(target, cst.Attribute) or target.attr.value not in HEAD_NAMES:
                continue
            if outside(a.statement) and _ids(index, target.value, a.scope) & ids:
                return f"{a.target} = ... at line {src.line(a.statement)}"
    own_head = _head_built_by_own_class(index, leaf)
    if own_head is not None:
        return own_head
    for call in index.calls:
        if m.matches(call.func, m.Attribute(attr=m.Name("reset_classifier"))):
            receiver = call.func.value  # type: ignore[attr-defined]
            if outside(call) and _ids(index, receiver, index.scope_of(call)) & ids:
                return f"{src.code(call.func)}() at line {src.line(call)}"
    return None


def _head_built_by_own_class(index: Index, leaf: cst.Call) -> str | None:
    """`CustomModel(cfg, pretrained=True)` of a Kaggle kernel: the script's own class
    whose `__init__` builds a head (`self.fc = nn.Linear(...)`, `self.model.classifier =
    ...`) beside the pretrained backbone; that head is random."""
    if not isinstance(leaf.func, cst.Name) or leaf.func.value not in index.classes:
        return None
    init = index.method_of(index.classes[leaf.func.value], "__init__")
    if init is None:
        return None
    for assign in m.findall(init.node, m.Assign(value=m.Call())):
        for target in assign.targets:  # type: ignore[attr-defined]
            node = target.target
            if (
                isinstance(node, cst.Attribute)
                and node.attr.value in HEAD_NAMES
                and index.source.code(node).startswith("self.")
            ):
                where = index.source.line(assign)
                return (
                    f"{leaf.func.value}.__init__ builds {index.source.code(node)} at line {where}"
                )
    return None


def _start_line(index: Index, scope: Scope, training: cst.CSTNode) -> int:
    """Where training starts: the loop, or, when a function holds it, the first call
    of that function (`model = train_model(model, ...)` after the function's def)."""
    fn = index.function(scope)
    calls = index.call_sites(fn) if fn is not None else []
    return min([index.source.line(training), *(index.source.line(c) for c in calls)])


def _condition(index: Index, call: cst.Call) -> cst.BaseExpression | None:
    """The test of an `if` the call runs under (not `if __name__ == "__main__"`)."""
    for node in index.source.ancestors(call):
        if isinstance(node, cst.If) and not is_main_guard(node):
            return node.test
        if isinstance(node, cst.FunctionDef):
            return None
    return None


def _condition_through_callers(index: Index, call: cst.Call) -> cst.BaseExpression | None:
    """The test of the `if` the call runs under, or, in a helper (`_load_snapshot()`),
    the one every call of the helper runs under (`if os.path.exists(snapshot_path):`):
    a resume, not trained weights every run starts from."""
    test = _condition(index, call)
    if test is not None:
        return test
    fn = index.function(index.scope_of(call))
    sites = index.call_sites(fn) if fn is not None else []
    tests = [_condition(index, site) for site in sites]
    if tests and all(t is not None for t in tests):
        return tests[0]
    return None


def _ids(index: Index, expr: cst.BaseExpression, scope: Scope) -> set[int]:
    return {id(leaf) for leaf, _ in values_through_wraps(index, expr, scope)}


def flag_off_by_default(index: Index, value: cst.BaseExpression) -> str | None:
    """`--pretrained` for `args.pretrained` when its `add_argument` gives it no value by
    default (`action="store_true"`, `default=None` / `False` / `""`, or no default)."""
    if not m.matches(value, m.Attribute(value=m.Name(), attr=m.Name())):
        return None
    dest = value.attr.value  # type: ignore[attr-defined]
    found = add_argument_of(index, dest)
    if found is None:
        return None
    flag, keywords = found
    code = index.source.code
    action = keywords.get("action")
    default = keywords.get("default")
    off = (
        code(action) in ("'store_true'", '"store_true"')
        if action is not None and default is None
        else default is None or code(default) in ("None", "False", "''", '""')
    )
    return flag if off else None
