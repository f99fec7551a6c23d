"""Distillation losses with the semantics of INC 2.x (spec 4.1-4.3).

Three criteria, each built from the one ``{LossName: params}`` entry of a loss
config's ``.config`` (`create_criterion`):

* `KnowledgeDistillationLoss` (spec 4.1): ``L = w0 * student_loss + w1 * T^2 *
  D(s / T, t / T)`` on output logits, ``D`` = soft cross-entropy, KL or MSE.
  A term whose weight is 0 is skipped, and the teacher forward runs only when
  ``w1 > 0`` (`needs_teacher_forward`).
* `IntermediateLayersKnowledgeDistillationLoss` (spec 4.2): losses between
  outputs of named submodules of the student and the teacher, captured by
  forward hooks (`features.FeatureCapture`), through a lazily created shape
  matcher.
* `SelfKnowledgeDistillationLoss` (spec 4.3): losses between named entries of
  the student's own output dict.

Decisions, where INC's behaviour is open or a bug:

* **Reductions.** The loss *values* are INC's. Soft CE is the per-sample sum
  over classes, averaged over the batch (all leading dimensions). KL is
  ``KL(softmax(t/T) || softmax(s/T))`` summed over every element and divided by
  the number of elements, i.e. PyTorch's ``reduction="mean"``, which INC uses
  (it is ``batchmean`` divided by the number of classes). We keep it, rather
  than the textbook ``batchmean``, so that loss weights, temperatures and
  learning rates tuned for an INC script give the same training here; it is
  computed as ``sum / numel`` so PyTorch's warning about ``"mean"`` is not
  raised on every step. MSE, L1 and KLDiv between features are the ``nn``
  losses with their default ``"mean"``.
* **Outputs** may be a tensor, a Hugging Face ``ModelOutput`` or dict (its
  ``"logits"``), an object with a ``.logits`` tensor, or a tuple / list (its
  first element); `logits_of` is the one place that decides. Student and
  teacher logits must have the same shape: they are never broadcast.
* **Several logits fields.** A ``ModelOutput`` / dict without ``"logits"``
  (``QuestionAnsweringModelOutput``: ``start_logits``, ``end_logits``;
  ``BertForPreTraining``: ``prediction_logits``, ``seq_relationship_logits``)
  is distilled on every tensor field whose name ends in ``logits`` and that both
  outputs have, and the student-vs-teacher term is the mean of the per-field
  terms, as INC's question-answering examples average start and end
  (`logits_fields`). Where ``"logits"`` is present it alone is used, so
  companions such as ``router_logits`` or ``enc_outputs_coord_logits`` are not
  distilled as class scores.
* **Precision.** Logits and features in float16 / bfloat16 are compared in
  float32 (same value up to rounding, no overflow in softmax sums).
* **Self-distillation groups** (INC quirk 9.7): upstream keeps a running group
  sum that is never reset and adds it to the total after every group, so group
  0 counts G times. Here each group counts once: ``total = sum_g w_g * sum_pairs
  f_g(...)``. The loss is a 0-d tensor (upstream: shape ``[1]``). As upstream,
  neither side of a pair is detached, so gradients reach both.
* **Feature matcher** (INC quirk 9.8): created lazily on the first loss, a
  ``Linear`` over the one dimension where the shapes differ; as upstream it is
  not trained (it is in no optimizer). Its weights are frozen
  (``requires_grad=False``), which leaves the loss and the student's gradients
  as upstream but stops gradients piling up in ``.grad`` that nothing clears.
  It is a fixed random projection; `feature_matchers` exposes it for a user
  who wants to train it.
* Every mapping or group whose weight is 0 is skipped, and a configuration in
  which every weight is 0 (nothing to distil) is refused at construction.

The classes live in `output_losses` (4.1, 4.3) and `intermediate_loss` (4.2), what
they share in `loss_base`; every name is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .intermediate_loss import IntermediateLayersKnowledgeDistillationLoss
from .loss_base import (
    DistillationLoss,
    DistillationResult,
    kl_divergence,
    logits_fields,
    logits_of,
    soft_cross_entropy,
)
from .output_losses import KnowledgeDistillationLoss, SelfKnowledgeDistillationLoss

__all__ = [
    "CRITERIA",
    "DistillationLoss",
    "DistillationResult",
    "IntermediateLayersKnowledgeDistillationLoss",
    "KnowledgeDistillationLoss",
    "SelfKnowledgeDistillationLoss",
    "create_criterion",
    "kl_divergence",
    "logits_fields",
    "logits_of",
    "soft_cross_entropy",
]


# -- construction from a config -----------------------------------------------------------------
CRITERIA: dict[str, type[DistillationLoss]] = {
    KnowledgeDistillationLoss.name: KnowledgeDistillationLoss,
    IntermediateLayersKnowledgeDistillationLoss.name: IntermediateLayersKnowledgeDistillationLoss,
    SelfKnowledgeDistillationLoss.name: SelfKnowledgeDistillationLoss,
}

_PARAMS: dict[str, tuple[str, ...]] = {
    KnowledgeDistillationLoss.name: ("temperature", "loss_types", "loss_weights"),
    IntermediateLayersKnowledgeDistillationLoss.name: (
        "layer_mappings",
        "loss_types",
        "loss_weights",
        "add_origin_loss",
    ),
    SelfKnowledgeDistillationLoss.name: (
        "layer_mappings",
        "temperature",
        "loss_types",
        "loss_weights",
        "add_origin_loss",
    ),
}


def create_criterion(criterion: Any) -> DistillationLoss:
    """Build the loss from a loss config (``.config = {LossName: params}``) or that dict.

    Accepts our config classes, INC's (attributes only) and, as INC 2.0 stored
    it, the ``{LossName: params}`` dict itself.
    """
    if isinstance(criterion, DistillationLoss):
        return criterion
    config = getattr(criterion, "config", criterion)
    if not isinstance(config, Mapping) or len(config) != 1:
        raise ValueError(
            "the distillation criterion must hold exactly one {LossName: params} entry, got "
            f"{config!r}; use KnowledgeDistillationLossConfig, "
            "IntermediateLayersKnowledgeDistillationLossConfig or "
            "SelfKnowledgeDistillationLossConfig"
        )
    ((name, params),) = config.items()
    if name not in CRITERIA:
        raise ValueError(f"unknown distillation loss {name!r}; allowed: {', '.join(CRITERIA)}")
    if not isinstance(params, Mapping):
        raise TypeError(f"the parameters of {name} must be a dict, got {type(params).__name__}")
    unknown = sorted(set(params) - set(_PARAMS[name]))
    if unknown:
        raise ValueError(
            f"{name}: unknown parameter(s) {unknown}; allowed: {', '.join(_PARAMS[name])}"
        )
    kwargs = {k: v for k, v in params.items() if v is not None}
    return CRITERIA[name](**kwargs)


# INC's class names (``compression/distillation/criterions.py``), for code written against them
PyTorchKnowledgeDistillationLoss = KnowledgeDistillationLoss
PyTorchIntermediateLayersKnowledgeDistillationLoss = IntermediateLayersKnowledgeDistillationLoss
PyTorchSelfKnowledgeDistillationLoss = SelfKnowledgeDistillationLoss
