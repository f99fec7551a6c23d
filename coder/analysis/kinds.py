"""What a construction is: a model, an optimizer, a scheduler, a data loader.

Each `is_*` function takes a leaf that `Index.values_of` reached (usually a
call) and answers from the callee's qualified name and the file's own classes.
"""

from __future__ import annotations

import re

import libcst as cst

from neural_coder.transforms import match as m

from .expressions import is_dotted_name
from .index import Function, Index, Scope

OPTIMIZER_NAMES = frozenset(
    {
        "SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "ASGD", "LBFGS", "NAdam",
        "RAdam", "RMSprop", "Rprop", "SparseAdam", "Adafactor", "Lion", "LAMB", "Lamb",
        "AdamW8bit", "Adam8bit", "PagedAdamW", "FusedAdam", "FusedLAMB",
    }
)  # fmt: skip
MODEL_FACTORY_MODULES = ("torchvision.models.", "timm.models.")
MODEL_FACTORIES = frozenset({"timm.create_model", "torch.hub.load"})
# a model builder of any module, named for what it returns: detectron2's `build_model(cfg)`,
# a project's `get_model(args.arch)`, `zoo.create_network(name)`, `load_model(path)`,
# `build_classifier(cfg)`; not `get_peft_model(model, cfg)`, which wraps a model it is given
MODEL_BUILDER = re.compile(
    r"^(build|get|create|make|load|init|construct|instantiate|setup)_(\w+_)?"
    r"(model|net|network|classifier|detector|segmentor|backbone)$"
)
# a registry of model classes indexed by name, called to build one: `MODELS[args.arch]()`,
# `model_dict[opt.model](num_classes=n)`, `ARCH_REGISTRY[name](cfg)`; not a module list
# (`self.nets[i](x)`), whose call runs a model
MODEL_REGISTRY = re.compile(
    r"^[A-Z0-9_]*(MODEL|NET|ARCH)[A-Z0-9_]*$|^(model|net|arch)\w*_(dict|registry|zoo|map|factory)$"
    r"|^(models|model_zoo|registry)$"
)
# containers of modules, not a model of their own
NN_CONTAINERS = frozenset({"ModuleList", "ModuleDict"})
# a module that computes a loss (`DistillKL(T)`, `LabelSmoothingLoss()`), by its name
CRITERION_NAME = re.compile(r"(loss|criterion|kl|divergence)$", re.IGNORECASE)
# a variable that holds a loss module: `criterion_kd`, `loss_fn`, `dino_loss`, `kd_crit`
CRITERION_VARIABLE = re.compile(r"criterion|(^|_)(crit|loss|losses)(_|$)|_loss$|^loss_?(fn|func)$")
# a variable that holds a model: `model`, `net`, `student`, `model_s`, `model_without_ddp`
MODEL_VARIABLE = re.compile(r"(^|_)(model|net|network|student|module|encoder|backbone)($|_)|model$")
NOT_A_MODEL_SUFFIX = re.compile(
    r"_(fn|func|function|list|dict|path|dir|name|names|cfg|config|args|type|class|id|kwargs)$"
)
MODEL_BASES = ("torch.nn.Module", "torch.nn.modules.module.Module")
# `X.from_pretrained(...)` builds one of these, not a module, when X's name says so
NOT_MODULE_WORDS = (
    "tokenizer", "config", "processor", "extractor", "scheduler", "pipeline", "dataset",
    "metric", "generationconfig",
)  # fmt: skip
# capitalised names in torch.nn that are not models
NN_NOT_MODELS = frozenset({"Parameter", "ParameterList", "ParameterDict", "Dropout", "Identity"})
# what a checkpoint dict is read with; a module loaded whole is not read this way
CHECKPOINT_READS = ("load_state_dict", "keys", "items", "values", "get")


def callee(index: Index, leaf: cst.BaseExpression) -> str | None:
    """The qualified name `leaf` calls; `getattr(models, args.arch)(...)` calls
    "torchvision.models.<getattr>" and `getattr(torch.optim, name)(...)` "torch.optim.<getattr>"."""
    if not isinstance(leaf, cst.Call):
        return None
    func = leaf.func
    if (
        isinstance(func, cst.Call)
        and m.matches(func.func, m.Name("getattr"))
        and len(func.args) >= 2
        and is_dotted_name(func.args[0].value)
    ):
        return f"{index.qualified(func.args[0].value)}.{GETATTR}"
    return index.qualified(func)


# the attribute of a `getattr(owner, name)` call, whose name is known only when it runs
GETATTR = "<getattr>"


def is_model_class(index: Index, cls: cst.ClassDef, seen: frozenset[str] = frozenset()) -> bool:
    for base in cls.bases:
        name = index.qualified(base.value)
        if (
            name in MODEL_BASES
            or _is_lightning_module(name)
            or name.endswith("PreTrainedModel")
            or name.startswith("transformers.")
        ):
            return True
        local = index.source.code(base.value)
        if local in index.classes and local not in seen:
            if is_model_class(index, index.classes[local], seen | {cls.name.value}):
                return True
    return False


def model_kind(index: Index, leaf: cst.BaseExpression) -> str | None:
    """A short description when `leaf` builds a model ("Net()", "from_pretrained"), else None."""
    name = callee(index, leaf)
    if name is None:
        return None
    last = name.rsplit(".", 1)[-1]
    if last == "load_from_checkpoint" and "." in name:  # Lightning: LitModel.load_from_checkpoint
        owner = name.rsplit(".", 2)[-2]
        cls = index.classes.get(owner)
        return name if cls is not None and is_model_class(index, cls) else None
    if last in index.classes and "." not in name:
        if CRITERION_NAME.search(last):
            return None
        return f"{last}()" if is_model_class(index, index.classes[last]) else None
    if (imported := index.imported_class(name, leaf)) is not None:  # a class of another file
        if CRITERION_NAME.search(last):
            return None
        return f"{last}()" if is_model_class(index, imported) else None
    if last in {"from_pretrained", "from_config"}:
        owner = name.rsplit(".", 2)[-2] if "." in name else ""
        return None if any(w in owner.lower() for w in NOT_MODULE_WORDS) else name
    if name.startswith("torch.nn.") and last[:1].isupper() and not _is_loss_name(last):
        return name
    if name.startswith(MODEL_FACTORY_MODULES) or name in MODEL_FACTORIES:
        return name
    if MODEL_BUILDER.match(last) and not _given_a_model(index, leaf):  # type: ignore[arg-type]
        return f"{name}()"
    if _calls_a_registry(index, leaf):  # type: ignore[arg-type]
        return f"{name}()"
    if name.startswith("transformers.") and ("For" in last or last.endswith("Model")):
        return name
    if name in {"torch.load"} and _loads_module(index, leaf):  # type: ignore[arg-type]
        return "torch.load (a pickled model)"
    return None


def _given_a_model(index: Index, call: cst.Call) -> bool:
    """An argument names a model (`get_peft_model(model, config)`, `load_model(net, path)`):
    the call wraps or fills a model the script already has."""
    return any(names_a_model(index.source.code(a.value)) for a in call.args)


def _calls_a_registry(index: Index, call: cst.Call) -> bool:
    func = call.func
    if not isinstance(func, cst.Subscript) or not is_dotted_name(func.value):
        return False
    return bool(MODEL_REGISTRY.match(index.source.code(func.value).rsplit(".", 1)[-1]))


def is_hf_pipeline(index: Index, leaf: cst.BaseExpression) -> bool:
    """`pipeline("text-classification", model=folder)`: it builds a model (its `.model`)."""
    return callee(index, leaf) == "transformers.pipeline"


def runs_in_a_pipeline(index: Index, model: str) -> bool:
    """`model` is `classifier.model` of a `classifier = pipeline(...)`: the pipeline reads
    the module's own attributes (`config`), so it takes the bare module back."""
    owner, _, attr = model.rpartition(".")
    return attr == "model" and any(
        is_hf_pipeline(index, a.value) for a in index.assignments.get(owner, [])
    )


def names_a_model(text: str) -> bool:
    """`model`, `net`, `student`, `model_s`, `model_without_ddp`, `self.model`; not
    `model_fn`, `model_path`, `module_list`, `model_cfg`."""
    last = text.split(".")[-1].lower()
    return bool(MODEL_VARIABLE.search(last)) and not NOT_A_MODEL_SUFFIX.search(last)


def names_a_criterion(text: str) -> bool:
    """`criterion`, `criterion_kd`, `dino_loss`, `loss_fn`, `criterion_list[0]`: a name
    that says it holds a loss, not a model."""
    last = re.split(r"[.\[]", text.rstrip("]"))[0] if "[" in text else text.split(".")[-1]
    return bool(CRITERION_VARIABLE.search(last.lower()))


def _is_lightning_module(name: str) -> bool:
    """`pl.LightningModule`, `lightning.pytorch.LightningModule`, `L.LightningModule`."""
    return name.split(".")[0] in ("lightning", "pytorch_lightning") and name.endswith(
        ".LightningModule"
    )


def _is_loss_name(name: str) -> bool:
    return name.endswith("Loss") or name in NN_NOT_MODELS or name in NN_CONTAINERS


def _loads_module(index: Index, call: cst.Call) -> bool:
    """`torch.load(f)` loads a whole module unless it is told to load weights only or
    what it loads is read as a checkpoint dict (`ckpt["model"]`, `load_state_dict(ckpt)`)."""
    src = index.source
    if any(
        a.keyword is not None and a.keyword.value == "weights_only" and src.code(a.value) == "True"
        for a in call.args
    ):
        return False
    if isinstance(src.parent(call), cst.Subscript | cst.Arg):
        return False  # `torch.load(f)["model"]`, `model.load_state_dict(torch.load(f))`
    statement = src.statement_of(call)
    if not isinstance(statement, cst.SimpleStatementLine):
        return True
    small = statement.body[0]
    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else []
    scope = index.scope_of(call)
    return not any(
        isinstance(t, cst.Name) and _read_as_checkpoint(index, t.value, scope) for t in targets
    )


def _read_as_checkpoint(index: Index, name: str, scope: cst.CSTNode) -> bool:
    """`name` is subscripted, passed to `load_state_dict`, or read with `.keys()` /
    `.items()` / `.get()` in `scope`: a checkpoint dict, not a module."""
    src = index.source
    for call in index.calls:
        func = call.func
        if index.scope_of(call) is not scope or not isinstance(func, cst.Attribute):
            continue
        method = func.attr.value
        if method == "load_state_dict":
            if any(src.code(a.value).split("[")[0] == name for a in call.args):
                return True
        elif method in CHECKPOINT_READS and src.code(func.value) == name:
            return True
    return bool(m.findall(scope, m.Subscript(value=m.Name(name))))


def is_optimizer(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    if name is None or is_scheduler(index, leaf):
        return False
    last = name.rsplit(".", 1)[-1]
    return (
        last in OPTIMIZER_NAMES
        or ".optim." in f".{name}"
        and (last[:1].isupper() or last == GETATTR)
        or _schedule_free(last)
    )


def is_scheduler(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    if name is None:
        return False
    last = name.rsplit(".", 1)[-1]
    if _schedule_free(last):
        return False
    return "lr_scheduler" in name or "schedule" in last.lower() or last.endswith("LR")


def is_schedule_free(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    return name is not None and _schedule_free(name.rsplit(".", 1)[-1])


def _schedule_free(name: str) -> bool:
    """A schedule-free optimizer (`schedulefree.AdamWScheduleFree`, `SGDScheduleFree`): an
    optimizer that needs no learning-rate schedule, not a schedule."""
    return "schedulefree" in name.lower().replace("_", "")


def is_dataloader(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    return name is not None and name.rsplit(".", 1)[-1] in {"DataLoader", "StatefulDataLoader"}


def is_grad_scaler(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    return name is not None and name.rsplit(".", 1)[-1] == "GradScaler"


# criteria whose outputs a distillation loss over softmax cannot compare: a regression's
# values, a binary (or multi-label) classifier's independent logits, a metric-learning
# embedding; a KL over the last dim sees a one-wide output as a one-class distribution
# (always 0: the teacher teaches nothing) and a `(batch,)` one as a distribution over the batch
POINTWISE_LOSSES: dict[str, str] = {
    **dict.fromkeys(
        ("mse_loss", "MSELoss", "l1_loss", "L1Loss", "smooth_l1_loss", "SmoothL1Loss")
        + ("huber_loss", "HuberLoss"),
        "regression",
    ),
    **dict.fromkeys(
        ("binary_cross_entropy", "binary_cross_entropy_with_logits", "BCELoss")
        + ("BCEWithLogitsLoss",),
        "binary",
    ),
    **dict.fromkeys(
        ("triplet_margin_loss", "TripletMarginLoss", "TripletMarginWithDistanceLoss")
        + ("triplet_margin_with_distance_loss", "cosine_embedding_loss", "CosineEmbeddingLoss")
        + ("margin_ranking_loss", "MarginRankingLoss", "hinge_embedding_loss")
        + ("HingeEmbeddingLoss",),
        "embedding",
    ),
}
#: criteria of a classifier over classes: a loss that also uses one keeps the KL default
CLASS_LOSSES = frozenset({"cross_entropy", "CrossEntropyLoss", "nll_loss", "NLLLoss"})


def pointwise_loss(
    index: Index, statement: cst.CSTNode, scope: Scope, follow: bool = True
) -> tuple[str, str] | None:
    """(criterion, kind) of the loss `statement` computes: `F.mse_loss` of
    `loss = F.mse_loss(out, y)`, `nn.BCEWithLogitsLoss` of `criterion(out, y)` where
    `criterion = nn.BCEWithLogitsLoss()`, or the criterion a loss function of this file
    computes (`loss_function(recon, x, mu, logvar)` returning `F.binary_cross_entropy(...)
    + kld`); kind: regression, binary or embedding (`POINTWISE_LOSSES`). None when the
    loss also uses a criterion over classes (a cross-entropy)."""
    found: list[tuple[str, str]] = []
    for call in _loss_calls(index, statement, scope, follow):
        if not is_dotted_name(call.func):
            continue
        leaves = list(index.values_of(call.func, scope))
        names = [index.qualified(call.func)] + [callee(index, leaf) or "" for leaf, _ in leaves]
        short = {name.rsplit(".", 1)[-1] for name in names}
        if short & CLASS_LOSSES:
            return None
        found += [
            (name, POINTWISE_LOSSES[name.rsplit(".", 1)[-1]])
            for name in names
            if name.rsplit(".", 1)[-1] in POINTWISE_LOSSES
        ][:1]
        if follow:
            for fn in [index.resolve_call(call), *(_own_function(index, x) for x, _ in leaves)]:
                if fn is not None and fn.cls is not None:
                    continue  # a model's class (its __init__) or method: not a loss function
                inner = fn and pointwise_loss(index, fn.node.body, fn.node, follow=False)
                if inner is None and fn and _uses(index, fn.node.body, fn.node, CLASS_LOSSES):
                    return None
                if inner:
                    found.append(inner)
    return found[0] if found else None


def _loss_calls(index: Index, statement: cst.CSTNode, scope: Scope, follow: bool) -> list[cst.Call]:
    """The calls of `statement`, and (`follow`) those that compute the names it adds up
    (`recon = F.mse_loss(x_hat, x)` of `loss = (recon + beta * kld) / n`)."""
    calls = [c for c in m.findall(statement, m.Call()) if isinstance(c, cst.Call)]
    if not follow:
        return calls
    called = {id(c.func) for c in calls}
    for name in m.findall(statement, m.Name()):
        if id(name) in called or not isinstance(name, cst.Name):
            continue
        calls += [
            leaf
            for leaf, _ in index.values_of(name, scope)
            if isinstance(leaf, cst.Call) and index.scope_of(leaf) is scope
        ]
    return calls


def _uses(index: Index, body: cst.CSTNode, scope: Scope, criteria: frozenset[str]) -> bool:
    return any(
        (index.qualified(call.func) or "").rsplit(".", 1)[-1] in criteria
        for call in m.findall(body, m.Call(func=m.Name() | m.Attribute()))
        if isinstance(call, cst.Call)
    )


def _own_function(index: Index, leaf: cst.BaseExpression) -> Function | None:
    """The function of this file a name stands for (`criterion` handed a `def criterion`)."""
    if not isinstance(leaf, cst.Name):
        return None
    found = [f for f in index.functions.values() if f.cls is None and f.name == leaf.value]
    return found[0] if len(found) == 1 else None
