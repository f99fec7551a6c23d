"""What a construction is: a model, an optimizer, a scheduler, a data loader.

Each `is_*` function takes a leaf that `Index.values_of` reached (usually a
call) and answers from the callee's qualified name and the file's own classes.
"""

from __future__ import annotations

import libcst as cst

from .index import Index

OPTIMIZER_NAMES = frozenset(
    {
        "SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "ASGD", "LBFGS", "NAdam",
        "RAdam", "RMSprop", "Rprop", "SparseAdam", "Adafactor", "Lion", "LAMB", "Lamb",
        "AdamW8bit", "Adam8bit", "PagedAdamW", "FusedAdam", "FusedLAMB",
    }
)  # fmt: skip
MODEL_FACTORY_MODULES = ("torchvision.models", "timm", "torch.hub")
MODEL_BASES = ("torch.nn.Module", "torch.nn.modules.module.Module")


def callee(index: Index, leaf: cst.BaseExpression) -> str | None:
    if isinstance(leaf, cst.Call):
        return index.qualified(leaf.func)
    return None


def is_model_class(index: Index, cls: cst.ClassDef, seen: frozenset[str] = frozenset()) -> bool:
    for base in cls.bases:
        name = index.qualified(base.value)
        if (
            name in MODEL_BASES
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
    if last in index.classes and "." not in name:
        return f"{last}()" if is_model_class(index, index.classes[last]) else None
    if (imported := index.imported_class(name, leaf)) is not None:  # a class of another file
        return f"{last}()" if is_model_class(index, imported) else None
    if last in {"from_pretrained", "from_config"}:
        return name
    if name.startswith("torch.nn.") and last[:1].isupper() and not _is_loss_name(last):
        return name
    if name.startswith(MODEL_FACTORY_MODULES) or name in {"timm.create_model"}:
        return name
    if name.startswith("transformers.") and ("For" in last or last.endswith("Model")):
        return name
    if name in {"torch.load"}:
        return "torch.load (a pickled model)"
    return None


def _is_loss_name(name: str) -> bool:
    return name.endswith("Loss") or name in {"Dropout", "Identity"}


def is_optimizer(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    if name is None or is_scheduler(index, leaf):
        return False
    last = name.rsplit(".", 1)[-1]
    return last in OPTIMIZER_NAMES or ".optim." in f".{name}" and last[:1].isupper()


def is_scheduler(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    if name is None:
        return False
    last = name.rsplit(".", 1)[-1]
    return "lr_scheduler" in name or "schedule" in last.lower() or last.endswith("LR")


def is_dataloader(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    return name is not None and name.rsplit(".", 1)[-1] in {"DataLoader", "StatefulDataLoader"}


def is_grad_scaler(index: Index, leaf: cst.BaseExpression) -> bool:
    name = callee(index, leaf)
    return name is not None and name.rsplit(".", 1)[-1] == "GradScaler"
