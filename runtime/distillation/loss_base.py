"""What every distillation loss shares (see `losses` for the decisions): model outputs
to logits, the divergences, the argument checks and the `DistillationLoss` base."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

KD_STUDENT_TYPES = ("CE", "MSE")
KD_TEACHER_TYPES = ("CE", "KL", "MSE")
INTERMEDIATE_TYPES = ("MSE", "KL", "L1")
SELF_TYPES = ("CE", "KL", "L2")


# -- output normalisation (the one place) ----------------------------------------
#: the prediction of torchvision's segmentation models (FCN, DeepLabV3, LRASPP), which
#: return `{"out": ..., "aux": ...}`; the auxiliary head is not the prediction
DENSE_KEY = "out"


def logits_of(output: Any, what: str = "output") -> torch.Tensor:
    """The logits tensor in a model output.

    A tensor is returned as is; a mapping (Hugging Face ``ModelOutput``, dict)
    gives its ``"logits"`` (else its ``"out"``: torchvision segmentation); an object
    with a tensor ``.logits`` gives that; a tuple or list gives its first element
    (normalised again).
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        logits = output.get("logits")
        if isinstance(logits, torch.Tensor):
            return logits
        if isinstance(output.get(DENSE_KEY), torch.Tensor):
            return output[DENSE_KEY]
        raise TypeError(
            f"the {what} is a {type(output).__name__} without a 'logits' tensor "
            f"(keys: {sorted(map(str, output.keys()))}); pass the logits tensor instead"
        )
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)):
        if not output:
            raise TypeError(f"the {what} is an empty {type(output).__name__}; expected logits")
        return logits_of(output[0], what)
    raise TypeError(
        f"the {what} is a {type(output).__name__}; expected a logits tensor, a dict or "
        "ModelOutput with 'logits', or a tuple whose first element is the logits"
    )


def logits_fields(output: Any, what: str = "output") -> dict[str, torch.Tensor]:
    """The logits tensors in a model output, by field name, for student-vs-teacher terms.

    A mapping (``ModelOutput``, dict) with a ``"logits"`` tensor gives that
    alone; one without gives every tensor entry whose name ends in ``logits``
    (``start_logits`` and ``end_logits`` of question answering). Anything else
    is `logits_of`, under the name ``"logits"``.
    """
    if not isinstance(output, Mapping):
        return {"logits": logits_of(output, what)}
    logits = output.get("logits")
    if isinstance(logits, torch.Tensor):
        return {"logits": logits}
    fields = {
        str(k): v
        for k, v in output.items()
        if str(k).endswith("logits") and isinstance(v, torch.Tensor)
    }
    if not fields and isinstance(output.get(DENSE_KEY), torch.Tensor):
        return {DENSE_KEY: output[DENSE_KEY]}
    if not fields:
        raise TypeError(
            f"the {what} is a {type(output).__name__} with no logits tensor: no 'logits' and no "
            f"tensor field ending in 'logits' (fields: {sorted(map(str, output.keys()))}); "
            "pass the logits tensor instead"
        )
    return fields


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _same_shape(a: torch.Tensor, b: torch.Tensor, what_a: str, what_b: str, where: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{where}: the {what_a} has shape {tuple(a.shape)} and the {what_b} has shape "
            f"{tuple(b.shape)}; they must be equal (no broadcasting)"
        )


# -- elementary divergences (INC's definitions) -----------------------------------
def class_dim(logits: torch.Tensor) -> int:
    """The dim of the classes: the last (`(batch, classes)`, a language model's
    `(batch, tokens, vocab)`), or dim 1 of a dense prediction `(batch, classes, H, W)`
    (segmentation), whose last dim is the image's width."""
    return 1 if logits.dim() >= 4 else -1


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``mean(sum_c -softmax(targets)_c * log_softmax(logits)_c)`` over the classes
    (`class_dim`), averaged over the rest."""
    dim = class_dim(logits)
    log_prob = F.log_softmax(logits, dim=dim)
    target_prob = F.softmax(targets, dim=dim)
    return (-target_prob * log_prob).sum(dim=dim).mean()


def kl_divergence(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(targets) || softmax(logits))`` over the classes (`class_dim`), with
    ``reduction="mean"`` (per element)."""
    dim = class_dim(logits)
    log_prob = F.log_softmax(logits, dim=dim)
    target_prob = F.softmax(targets, dim=dim)
    return _kl_div_mean(log_prob, target_prob)


def _kl_div_mean(log_prob: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
    """``nn.KLDivLoss()`` (``reduction="mean"``, per element) on prepared inputs."""
    return F.kl_div(log_prob, prob, reduction="sum") / max(log_prob.numel(), 1)


def l2_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of the difference over all elements (``torch.dist``)."""
    return torch.dist(a, b)


# -- parameter checks ---------------------------------------------------------------
def _check_types(name: str, values: Sequence[Any], allowed: Sequence[str]) -> list[str]:
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list, got {type(values).__name__}")
    out = []
    for v in values:
        if v not in allowed:
            raise ValueError(f"{name}: unknown loss type {v!r}; allowed: {', '.join(allowed)}")
        out.append(str(v))
    return out


def _check_weights(name: str, values: Sequence[Any]) -> list[float]:
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list, got {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ValueError(f"{name}: each weight must be a number in [0, 1], got {v!r}")
        out.append(float(v))
    return out


def _check_terms(
    loss_types: Sequence[Any] | None,
    loss_weights: Sequence[Any] | None,
    add_origin_loss: Any,
    n: int,
    default_type: str,
    allowed: Sequence[str],
    counted: str,
) -> tuple[list[str], list[float]]:
    """The per-mapping loss types and weights of an intermediate-layer or self
    distillation loss (defaults: `default_type` each, equal weights), checked against
    the `n` mappings (`counted` says what they are in the length error)."""
    types = _check_types(
        "loss_types", list(loss_types) if loss_types else [default_type] * n, allowed
    )
    weights = _check_weights("loss_weights", list(loss_weights) if loss_weights else [1.0 / n] * n)
    if not len(types) == len(weights) == n:
        raise ValueError(
            f"layer_mappings ({counted}), loss_types ({len(types)}) and loss_weights "
            f"({len(weights)}) must have the same length"
        )
    if not isinstance(add_origin_loss, bool):
        raise TypeError(f"add_origin_loss must be a bool, got {add_origin_loss!r}")
    if not any(weights):
        raise ValueError("every loss_weight is 0: nothing to distil")
    return types, weights


def _check_temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"temperature must be a number > 0, got {value!r}")
    return float(value)


@dataclass
class DistillationResult:
    """What a criterion computed for one step.

    ``total`` replaces the user's loss; ``distillation`` is the weighted
    distillation part alone (None when no distillation term was added).
    """

    total: torch.Tensor
    distillation: torch.Tensor | None


class DistillationLoss:
    """Common interface of the three criteria (used by `DistillationCompressor`)."""

    #: the config key (INC's loss name)
    name: str = ""
    #: for the summary; None where the loss has no temperature
    temperature: float | None = None
    loss_types: list[str]

    @property
    def needs_teacher_forward(self) -> bool:
        """Whether `compute` needs the teacher to have run on the step's input."""
        return False

    def compute(
        self, student_output: Any, teacher_output: Any, student_loss: Any
    ) -> DistillationResult:
        raise NotImplementedError

    def loss_cal_sloss(
        self, student_output: Any, teacher_output: Any, student_loss: Any
    ) -> torch.Tensor:
        """INC's name: the loss that replaces the user's loss."""
        return self.compute(student_output, teacher_output, student_loss).total

    def clear_features(self) -> None:
        """Forget captured features (only losses that capture features have any)."""
