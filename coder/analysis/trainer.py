"""Hugging Face `Trainer` use: where it is built, what it is given, how it is run.

A Trainer class is one imported from `transformers` (or `trl`, `setfit`) whose
name ends in `Trainer`, or a class of the file (or of another file of the project,
followed through the import) that inherits from one, under any name. A class from
another library (`ORTTrainer`, a `Seq2SeqTrainer` subclass of a package not
analysed) is recognised by how it is built and used: a `...Trainer` given `model=`
and `args=` (or TrainingArguments) whose `.train()` or `.evaluate()` is called.
That is a guess, and the use says so (`guessed`). The facts are what the planner needs to attach compression: the model
argument, the callbacks argument (or whether the class can take one), the
metric keys `compute_metrics` returns, and the `train()` / `evaluate()` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .index import Index, Scope, iter_returns, unconditional
from .kinds import names_a_model
from .source import Source

TRAINER_PACKAGES = ("transformers", "trl", "setfit")
#: the Trainer's methods that write the model it holds
SAVE_METHODS = ("save_model", "push_to_hub")


@dataclass
class TrainerUse:
    call: cst.Call  # Trainer(...)
    statement: cst.BaseStatement
    scope: Scope
    class_name: str
    target: str | None  # what the trainer is assigned to ("trainer", "self.trainer")
    model: cst.BaseExpression | None  # the model argument
    args: cst.BaseExpression | None  # the TrainingArguments argument
    callbacks: cst.Arg | None  # an existing callbacks= argument
    accepts_callbacks: bool  # the class's __init__ takes callbacks= (directly or via **kwargs)
    metric_keys: list[str] | None  # keys compute_metrics returns, when they can be read
    has_compute_metrics: bool
    has_eval_dataset: bool
    has_train_dataset: bool
    # `eval_dataset=ds if args.do_eval else None`: the run may have none to evaluate on
    eval_dataset_optional: bool = False
    # a return of compute_metrics whose keys cannot be read (`return final_results`)
    metric_returns_unread: bool = False
    train_calls: list[cst.Call] = field(default_factory=list)
    eval_calls: list[cst.Call] = field(default_factory=list)  # evaluate() / predict()
    # save_model() / push_to_hub() / trainer.model.save_pretrained(): what writes the model
    save_calls: list[cst.Call] = field(default_factory=list)
    guessed: str | None = None  # why a class of unknown origin is taken for a Trainer
    # the keys of each dict compute_metrics returns, one list per return (branches differ)
    metric_branches: list[list[str]] = field(default_factory=list)


def _may_be_none(arg: cst.Arg | None) -> bool:
    """`eval_dataset=x if cond else None` (either branch None)."""
    value = arg.value if arg is not None else None
    if not isinstance(value, cst.IfExp):
        return False
    return any(isinstance(b, cst.Name) and b.value == "None" for b in (value.body, value.orelse))


def is_trainer_class(
    index: Index, name: str, seen: frozenset[str] = frozenset(), at: cst.CSTNode | None = None
) -> bool:
    """`name` (a class name as written in the file of `at`, by default the entry
    script) is a Trainer class."""
    qualified = _qualified_name(index, name, at)
    if qualified.split(".")[0] in TRAINER_PACKAGES and qualified.endswith("Trainer"):
        return True
    cls = project_class(index, name, at)
    if cls is None or name in seen:
        return False
    return any(
        is_trainer_class(index, index.source.code(b.value), seen | {name}, b.value)
        for b in cls.bases
    )


def _qualified_name(index: Index, name: str, at: cst.CSTNode | None) -> str:
    imports = index.imports_of(at) if at is not None else index.imports
    qualified = imports.get(name.split(".")[0], "")
    if "." in name and qualified:
        qualified = qualified + name[name.index(".") :]
    return qualified


def project_class(index: Index, name: str, at: cst.CSTNode | None = None) -> cst.ClassDef | None:
    """The class of the project that `name` names where `at` is: one imported from
    another file (`from trainer_qa import QuestionAnsweringTrainer as QA`), or one
    defined in a file of the project under that name."""
    qualified = _qualified_name(index, name, at)
    imported = index.imported_class(qualified, at or index.source.module) if qualified else None
    return imported or index.classes.get(name)


def step_without_compute_loss(index: Index, name: str, at: cst.CSTNode) -> cst.FunctionDef | None:
    """The `training_step` that the project's Trainer class `name` (or a project base of it)
    defines and that computes its loss without `self.compute_loss` or the base class's
    `training_step`, so a loss added through compute_loss never trains; None otherwise."""
    seen: set[str] = set()
    pending = [(name, at)]
    while pending:
        current, where = pending.pop(0)
        cls = project_class(index, current, where)
        if cls is None or current in seen:
            continue
        seen.add(current)
        for statement in cls.body.body:
            if isinstance(statement, cst.FunctionDef) and statement.name.value == "training_step":
                return None if _reaches_compute_loss(statement) else statement
        pending.extend((index.source.code(b.value), b.value) for b in cls.bases)
    return None


def _reaches_compute_loss(step: cst.FunctionDef) -> bool:
    """`self.compute_loss(...)` or `super().training_step(...)` in `step`."""
    for call in _calls_in(step):
        func = call.func
        if not isinstance(func, cst.Attribute):
            continue
        owner = func.value
        if func.attr.value == "compute_loss" and isinstance(owner, cst.Name):
            return True
        if (
            func.attr.value == "training_step"
            and isinstance(owner, cst.Call)
            and isinstance(owner.func, cst.Name)
            and owner.func.value == "super"
        ):
            return True
    return False


def _calls_in(node: cst.CSTNode) -> list[cst.Call]:
    calls: list[cst.Call] = []

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            calls.append(call)

    node.visit(_Calls())
    return calls


def _foreign_trainer_base(index: Index, cls: cst.ClassDef, seen: frozenset[str]) -> bool:
    """`cls` inherits from a `...Trainer` class that the project does not define."""
    for base in cls.bases:
        name = index.source.code(base.value)
        parent = project_class(index, name, base.value)
        if parent is None and name.split(".")[-1].endswith("Trainer"):
            return True
        if parent is not None and name not in seen:
            if _foreign_trainer_base(index, parent, seen | {name}):
                return True
    return False


def trainer_bases(index: Index) -> set[str]:
    """Names of the project's own Trainer subclasses."""
    return {name for name, cls in index.classes.items() if is_trainer_class(index, name, at=cls)}


def _guess(index: Index, call: cst.Call, name: str) -> str | None:
    """Why `call` looks like it builds a Trainer of a library the tool does not know,
    or None. Only a class the project does not define, or a subclass of one, is
    guessed at; its `.train()` / `.evaluate()` calls are checked once the use is complete."""
    cls = project_class(index, name, call)
    if cls is not None and not _foreign_trainer_base(index, cls, frozenset()):
        return None
    arguments = _arguments(call)
    model = arguments.get("model")
    if model is None or (
        model.keyword is None and not names_a_model(index.source.code(model.value))
    ):
        # a Trainer is handed the model; not `nn.Conv2d(in_planes, planes)`, whose second
        # argument would be followed through every call of its function below
        return None
    keywords = {a.keyword.value for a in call.args if a.keyword is not None}
    args = arguments.get("args")
    built_with = ""
    if args is not None:
        for leaf, _ in index.values_of(args.value, index.scope_of(args.value)):
            if isinstance(leaf, cst.Call):
                built_with = index.source.code(leaf.func).split(".")[-1]
                break
    takes_arguments = "args" in keywords or built_with.endswith(("TrainingArguments", "Config"))
    named_trainer = name.split(".")[-1].endswith("Trainer")
    if "model" not in arguments or not takes_arguments:
        return None
    if not named_trainer and not built_with.endswith("TrainingArguments"):
        return None
    origin = _qualified_name(index, name, call)
    if cls is not None:
        where = "a subclass of " + ", ".join(index.source.code(b.value) for b in cls.bases)
    else:
        where = "from " + (origin.rsplit(".", 1)[0] if "." in origin else "an unknown module")
    return (
        f"{name} ({where}) is taken for a Hugging Face Trainer subclass from how it is "
        "built (model=, args=) and run"
    )


def find_trainers(index: Index) -> list[TrainerUse]:
    """Every Trainer construction in the file, in file order."""
    src = index.source
    found = []
    for call in index.calls:
        name = src.code(call.func)
        guessed = None
        if not is_trainer_class(index, name, at=call):
            guessed = _guess(index, call, name)
            if guessed is None:
                continue
        statement = src.statement_of(call)
        args = _arguments(call)
        callbacks = args.get("callbacks")
        found.append(
            TrainerUse(
                call=call,
                statement=statement,
                scope=index.scope_of(call),
                class_name=name,
                target=_assigned_to(src, statement, call),
                model=args["model"].value if "model" in args else None,
                args=args["args"].value if "args" in args else None,
                callbacks=callbacks,
                accepts_callbacks=_accepts_callbacks(index, name, call),
                metric_keys=next(iter(_metric_branches(index, args.get("compute_metrics"))), None),
                metric_branches=_metric_branches(index, args.get("compute_metrics")),
                metric_returns_unread=_metric_returns_unread(index, args.get("compute_metrics")),
                has_compute_metrics="compute_metrics" in args,
                has_eval_dataset="eval_dataset" in args,
                eval_dataset_optional=_may_be_none(args.get("eval_dataset")),
                has_train_dataset="train_dataset" in args,
                guessed=guessed,
            )
        )
    for use in found:
        if use.target is None:
            chained = src.parent(use.call)  # Trainer(...).train()
            if isinstance(chained, cst.Attribute) and chained.attr.value == "train":
                outer = src.parent(chained)
                if isinstance(outer, cst.Call):
                    use.train_calls.append(outer)
            continue
        # `trainer = Trainer(...)` built again under the same name (a search, then the run
        # with the best settings), where it always runs: the calls after it are the new one's
        rebound = min(
            (
                src.line(other.statement)
                for other in found
                if other.target == use.target
                and other.scope is use.scope
                and src.line(other.statement) > src.line(use.statement)
                and unconditional(index, other.statement, use.scope)
            ),
            default=None,
        )
        for call in index.calls:
            func = call.func
            if (
                not isinstance(func, cst.Attribute)
                or index.scope_of(call) is not use.scope
                or src.line(call) <= src.line(use.statement)
                or (rebound is not None and src.line(call) >= rebound)
            ):
                continue
            owner, method = src.code(func.value), func.attr.value
            if owner == use.target:
                if method == "train":
                    use.train_calls.append(call)
                elif method in ("evaluate", "predict"):
                    use.eval_calls.append(call)
                elif method in SAVE_METHODS:
                    use.save_calls.append(call)
            elif owner == f"{use.target}.model" and method == "save_pretrained":
                use.save_calls.append(call)
    # a guess stands only when the object is run as a Trainer is
    found = [u for u in found if u.guessed is None or u.train_calls or u.eval_calls]
    found.sort(key=lambda u: src.line(u.call))
    return found


# Trainer(model, args, data_collator, train_dataset, eval_dataset, ...): its positional order.
_POSITIONAL = ("model", "args", "data_collator", "train_dataset", "eval_dataset")


def _arguments(call: cst.Call) -> dict[str, cst.Arg]:
    out: dict[str, cst.Arg] = {}
    for position, arg in enumerate(call.args):
        if arg.star:
            continue
        if arg.keyword is not None:
            out[arg.keyword.value] = arg
        elif position < len(_POSITIONAL):
            out[_POSITIONAL[position]] = arg
    return out


def _assigned_to(src: Source, statement: cst.BaseStatement, call: cst.Call) -> str | None:
    if isinstance(statement, cst.SimpleStatementLine):
        small = statement.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and small.value is call:
            target = small.targets[0].target
            if isinstance(target, cst.Name | cst.Attribute):
                return src.code(target)
    return None


def _accepts_callbacks(index: Index, name: str, at: cst.CSTNode | None = None) -> bool:
    """Whether `name(...)` can take `callbacks=`: the first `__init__` found up the
    project's own classes decides; a library class always can."""
    cls = project_class(index, name, at)
    if cls is None:
        return True
    for statement in cls.body.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__":
            params = statement.params
            names = {p.name.value for p in (*params.params, *params.kwonly_params)}
            return "callbacks" in names or params.star_kwarg is not None
    return all(_accepts_callbacks(index, index.source.code(b.value), b.value) for b in cls.bases)


def _metric_function(index: Index, arg: cst.Arg | None) -> cst.FunctionDef | None:
    """The file's function that `compute_metrics=` names: `compute_metrics=fn`, or
    `fn if args.predict_with_generate else None` (either branch)."""
    value = arg.value if arg is not None else None
    if isinstance(value, cst.IfExp):
        named = [b for b in (value.body, value.orelse) if isinstance(b, cst.Name)]
        value = next((b for b in named if b.value != "None"), None)
    if not isinstance(value, cst.Name):
        return None
    function = next(
        (fn for fn in index.functions.values() if fn.name == value.value and fn.cls is None),
        None,
    )
    return function.node if function is not None else None


def _metric_returns_unread(index: Index, arg: cst.Arg | None) -> bool:
    """Some return of the file's `compute_metrics` is no dict whose keys can be read
    (`return final_results`, built key by key on one branch)."""
    function = _metric_function(index, arg)
    if function is None:
        return False
    returns = [r.value for r in iter_returns(function) if r.value is not None]
    return len(_metric_branches(index, arg)) < len(returns)


def _metric_branches(index: Index, arg: cst.Arg | None) -> list[list[str]]:
    """The string keys of each dict `compute_metrics` returns (a dict literal or
    `dict(key=...)`), one list per return statement, when it is a function of this file."""
    function = _metric_function(index, arg)
    if function is None:
        return []
    branches = []
    for returned in iter_returns(function):
        value = returned.value
        keys: list[str] = []
        if isinstance(value, cst.Dict):
            keys = [
                e.key.evaluated_value
                for e in value.elements
                if isinstance(e, cst.DictElement)
                and isinstance(e.key, cst.SimpleString)
                and isinstance(e.key.evaluated_value, str)
            ]
        elif (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Name)
            and value.func.value == "dict"
        ):
            keys = [a.keyword.value for a in value.args if a.keyword is not None]
        if keys:
            branches.append(keys)
    return branches
