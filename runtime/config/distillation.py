"""Knowledge distillation configs and their loss criteria (spec 2.7)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from .validation import (
    DotDict,
    Validator,
    _Config,
    _fail,
    _is_number,
    anything,
    boolean,
    mapping,
    number,
)


# -- distillation ------------------------------------------------------------------------
def _weights_in_unit(owner: str, param: str, value: Any, count: int | None) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(
        _is_number(w) and 0.0 <= w <= 1.0 for w in value
    ):
        raise _fail(owner, param, value, "a list of floats, each in [0.0, 1.0]")
    if count is not None and len(value) != count:
        raise _fail(owner, param, value, f"a list of {count} floats, each in [0.0, 1.0]")
    return [float(w) for w in value]


def _types_from(
    owner: str, param: str, value: Any, allowed: tuple[str, ...], count: int | None
) -> list[str]:
    desc = f"a list of values from {list(allowed)}" + (
        f" with {count} items" if count is not None else ""
    )
    if not isinstance(value, (list, tuple)) or not all(v in allowed for v in value):
        raise _fail(owner, param, value, desc)
    if count is not None and len(value) != count:
        raise _fail(owner, param, value, desc)
    return list(value)


def _kd_loss_types(owner: str, param: str, value: Any) -> Any:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or value[0] not in ("CE", "MSE")
        or value[1] not in ("CE", "KL", "MSE")
    ):
        raise _fail(
            owner,
            param,
            value,
            "[student-vs-label loss in 'CE'/'MSE', student-vs-teacher loss in 'CE'/'KL'/'MSE']",
        )
    return list(value)


def _kd_loss_weights(owner: str, param: str, value: Any) -> Any:
    weights = _weights_in_unit(owner, param, value, 2)
    if abs(sum(weights) - 1.0) > 1e-6:
        raise _fail(owner, param, value, "two floats in [0.0, 1.0] summing to 1")
    return weights


class KnowledgeDistillationLossConfig(_Config):
    """Output-level KD loss (spec 2.7 / 4.1).

    `loss_types[0]` (student vs label) is `CE` or `MSE`; `loss_types[1]` (student
    vs teacher) is `CE`, `KL` or `MSE`; two weights in [0, 1] that sum to 1
    within 1e-6 (INC: 1e-9, which can reject sums that are 1 on paper).
    """

    _rules: ClassVar[dict[str, Validator]] = {
        "temperature": number(0.0, min_open=True),
        "loss_types": _kd_loss_types,
        "loss_weights": _kd_loss_weights,
    }

    def __init__(
        self,
        temperature: float = 1.0,
        loss_types: list[str] | None = None,
        loss_weights: list[float] | None = None,
    ) -> None:
        self.temperature = temperature
        self.loss_types = ["CE", "CE"] if loss_types is None else loss_types
        self.loss_weights = [0.5, 0.5] if loss_weights is None else loss_weights

    @property
    def config(self) -> DotDict:
        return DotDict(
            KnowledgeDistillationLoss={
                "temperature": self.temperature,
                "loss_types": list(self.loss_types),
                "loss_weights": list(self.loss_weights),
            }
        )


def _layer_ref(item: Any) -> bool:
    """One side of a mapping: "name", (name,) or (name, proc) with proc a str or callable."""
    if isinstance(item, str):
        return True
    if (
        not isinstance(item, (list, tuple))
        or not 1 <= len(item) <= 2
        or not isinstance(item[0], str)
    ):
        return False
    return len(item) == 1 or isinstance(item[1], str) or callable(item[1])


class IntermediateLayersKnowledgeDistillationLossConfig(_Config):
    """Intermediate-layer KD (spec 2.7 / 4.2).

    Each mapping is `[student_ref, teacher_ref]` or `[ref]` (same layer name in
    both models), where a ref is `"name"`, `("name",)` or `("name", proc)` and
    proc is a key / numeric index string or a callable. Missing `loss_types`
    default to `MSE` and missing `loss_weights` to `1/len` per mapping.
    """

    _rules: ClassVar[dict[str, Validator]] = {
        "layer_mappings": anything,
        "loss_types": anything,
        "loss_weights": anything,
        "add_origin_loss": boolean(),
    }
    _LOSS_TYPES: ClassVar[tuple[str, ...]] = ("MSE", "KL", "L1")

    def __init__(
        self,
        layer_mappings: list[Any] | None = None,
        loss_types: list[str] | None = None,
        loss_weights: list[float] | None = None,
        add_origin_loss: bool = False,
    ) -> None:
        owner = type(self).__name__
        mappings = [] if layer_mappings is None else layer_mappings
        if not isinstance(mappings, (list, tuple)):
            raise _fail(owner, "layer_mappings", layer_mappings, "a list of layer mappings")
        for item in mappings:
            if (
                not isinstance(item, (list, tuple))
                or not 1 <= len(item) <= 2
                or not all(_layer_ref(ref) for ref in item)
            ):
                raise _fail(
                    owner,
                    "layer_mappings",
                    item,
                    "items [(student_layer, proc), (teacher_layer, proc)], "
                    "[(student_layer,), (teacher_layer,)] or [(layer_name[, proc])]",
                )
        count = len(mappings)
        self.layer_mappings = copy.copy(list(mappings))
        self.loss_types = _types_from(
            owner, "loss_types", loss_types or ["MSE"] * count, self._LOSS_TYPES, count
        )
        self.loss_weights = _weights_in_unit(
            owner,
            "loss_weights",
            loss_weights or ([1.0 / count] * count if count else []),
            count,
        )
        self.add_origin_loss = add_origin_loss

    @property
    def config(self) -> DotDict:
        return DotDict(
            {
                "IntermediateLayersKnowledgeDistillationLoss": {
                    "layer_mappings": list(self.layer_mappings),
                    "loss_types": list(self.loss_types),
                    "loss_weights": list(self.loss_weights),
                    "add_origin_loss": self.add_origin_loss,
                }
            }
        )


class SelfKnowledgeDistillationLossConfig(_Config):
    """Self-distillation (spec 2.7 / 4.3): `layer_mappings` is a list of groups, each a
    list of `[student_name, teacher_name]` pairs (keys of the model's output dict).
    `loss_types` items are `CE`, `KL`, `L2` (default `CE`); weights default to
    `1/len(groups)`."""

    _rules: ClassVar[dict[str, Validator]] = {
        "layer_mappings": anything,
        "temperature": number(0.0, min_open=True),
        "loss_types": anything,
        "loss_weights": anything,
        "add_origin_loss": boolean(),
    }
    _LOSS_TYPES: ClassVar[tuple[str, ...]] = ("CE", "KL", "L2")

    def __init__(
        self,
        layer_mappings: list[Any] | None = None,
        temperature: float = 1.0,
        loss_types: list[str] | None = None,
        loss_weights: list[float] | None = None,
        add_origin_loss: bool = False,
    ) -> None:
        owner = type(self).__name__
        groups = [] if layer_mappings is None else layer_mappings
        bad = not isinstance(groups, (list, tuple))
        if not bad:
            for group in groups:
                if not isinstance(group, (list, tuple)) or not all(
                    isinstance(pair, (list, tuple))
                    and len(pair) == 2
                    and all(isinstance(n, str) for n in pair)
                    for pair in group
                ):
                    bad = True
        if bad:
            raise _fail(
                owner,
                "layer_mappings",
                layer_mappings,
                "a list of groups, each a list of [student_name, teacher_name] pairs of str",
            )
        count = len(groups)
        self.layer_mappings = copy.deepcopy(list(groups))
        self.temperature = temperature
        self.loss_types = _types_from(
            owner, "loss_types", loss_types or ["CE"] * count, self._LOSS_TYPES, count
        )
        self.loss_weights = _weights_in_unit(
            owner,
            "loss_weights",
            loss_weights or ([1.0 / count] * count if count else []),
            count,
        )
        self.add_origin_loss = add_origin_loss

    @property
    def config(self) -> DotDict:
        return DotDict(
            SelfKnowledgeDistillationLoss={
                "layer_mappings": copy.deepcopy(self.layer_mappings),
                "temperature": self.temperature,
                "loss_types": list(self.loss_types),
                "loss_weights": list(self.loss_weights),
                "add_origin_loss": self.add_origin_loss,
            }
        )


_KD_CRITERIA = (
    KnowledgeDistillationLossConfig,
    IntermediateLayersKnowledgeDistillationLossConfig,
    SelfKnowledgeDistillationLossConfig,
)


def _criterion(owner: str, param: str, value: Any) -> Any:
    if isinstance(value, _KD_CRITERIA):
        return value
    cfg = getattr(value, "config", None)  # INC's own criterion configs
    if isinstance(cfg, Mapping) and len(cfg) == 1:
        return value
    raise _fail(
        owner,
        param,
        value,
        "a KnowledgeDistillationLossConfig, IntermediateLayersKnowledgeDistillationLossConfig "
        "or SelfKnowledgeDistillationLossConfig",
    )


def _teacher(owner: str, param: str, value: Any) -> Any:
    import torch

    if value is None or isinstance(value, torch.nn.Module):
        return value
    raise _fail(owner, param, value, "a torch.nn.Module (None only until prepare_compression)")


class DistillationConfig(_Config):
    """Knowledge distillation (spec 2.7): positional order `(teacher_model, criterion,
    optimizer)`. `optimizer` is stored and not used, as in INC. A `teacher_model`
    of None is accepted here and rejected when the compression is prepared."""

    _rules: ClassVar[dict[str, Validator]] = {
        "teacher_model": _teacher,
        "criterion": _criterion,
        "optimizer": mapping(),
    }

    def __init__(
        self,
        teacher_model: Any = None,
        criterion: Any = None,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        self.teacher_model = teacher_model
        self.criterion = KnowledgeDistillationLossConfig() if criterion is None else criterion
        self.optimizer = {"SGD": {"learning_rate": 0.0001}} if optimizer is None else optimizer

    def __repr__(self) -> str:
        teacher = type(self.teacher_model).__name__ if self.teacher_model is not None else None
        return (
            f"DistillationConfig(teacher_model=<{teacher}>, criterion={self.criterion!r}, "
            f"optimizer={self.optimizer!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "teacher_model": self.teacher_model,
            "criterion": self.criterion.config,
            "optimizer": self.optimizer,
        }
