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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .features import FeatureCapture, LayerSpec, Processor

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

KD_STUDENT_TYPES = ("CE", "MSE")
KD_TEACHER_TYPES = ("CE", "KL", "MSE")
INTERMEDIATE_TYPES = ("MSE", "KL", "L1")
SELF_TYPES = ("CE", "KL", "L2")


# -- output normalisation (the one place) ----------------------------------------
def logits_of(output: Any, what: str = "output") -> torch.Tensor:
    """The logits tensor in a model output.

    A tensor is returned as is; a mapping (Hugging Face ``ModelOutput``, dict)
    gives its ``"logits"``; an object with a tensor ``.logits`` gives that; a
    tuple or list gives its first element (normalised again).
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        logits = output.get("logits")
        if isinstance(logits, torch.Tensor):
            return logits
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
def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``mean_batch(sum_c -softmax(targets)_c * log_softmax(logits)_c)`` over the last dim."""
    log_prob = F.log_softmax(logits, dim=-1)
    target_prob = F.softmax(targets, dim=-1)
    return (-target_prob * log_prob).sum(dim=-1).mean()


def kl_divergence(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(targets) || softmax(logits))`` with ``reduction="mean"`` (per element)."""
    log_prob = F.log_softmax(logits, dim=-1)
    target_prob = F.softmax(targets, dim=-1)
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


# -- 4.1 knowledge distillation on logits -------------------------------------------
class KnowledgeDistillationLoss(DistillationLoss):
    """``L = w0 * student_loss + w1 * T^2 * D(s / T, t / T)`` (spec 4.1)."""

    name = "KnowledgeDistillationLoss"

    def __init__(
        self,
        temperature: float = 1.0,
        loss_types: Sequence[str] = ("CE", "CE"),
        loss_weights: Sequence[float] = (0.5, 0.5),
    ) -> None:
        self.temperature = _check_temperature(temperature)
        if len(loss_types) != 2 or len(loss_weights) != 2:
            raise ValueError(
                "KnowledgeDistillationLoss needs two loss_types and two loss_weights "
                f"(student vs labels, student vs teacher), got {list(loss_types)} and "
                f"{list(loss_weights)}"
            )
        self.loss_types = [
            *_check_types("loss_types[0] (student vs labels)", loss_types[:1], KD_STUDENT_TYPES),
            *_check_types("loss_types[1] (student vs teacher)", loss_types[1:], KD_TEACHER_TYPES),
        ]
        self.loss_weights = _check_weights("loss_weights", loss_weights)
        if abs(sum(self.loss_weights) - 1.0) > 1e-6:  # as the config class
            raise ValueError(f"loss_weights must sum to 1, got {self.loss_weights}")
        self._divergence: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = {
            "CE": soft_cross_entropy,
            "KL": kl_divergence,
            "MSE": F.mse_loss,
        }[self.loss_types[1]]

    @property
    def needs_teacher_forward(self) -> bool:
        return self.loss_weights[1] > 0

    def teacher_student_loss(self, student_output: Any, teacher_output: Any) -> torch.Tensor:
        """``T^2 * D(s / T, t / T)`` (unweighted), averaged over the logits fields."""
        pairs = self._paired_logits(student_output, teacher_output)
        temp = self.temperature
        terms = []
        for name, s, t in pairs:
            s = _float(s)
            t = _float(t).to(s.device)
            _same_shape(s, t, f"student {name}", f"teacher {name}", self.name)
            if s.dim() == 0:
                raise ValueError(
                    f"{self.name}: the {name} are a scalar (a tuple output whose first element "
                    "is the loss?); pass outputs['logits'] or use return_dict=True"
                )
            terms.append(self._divergence(s / temp, t.detach() / temp))
        total = terms[0]
        for term in terms[1:]:
            total = total + term.to(total.device)
        return total / len(terms) * (temp * temp)

    def _paired_logits(
        self, student_output: Any, teacher_output: Any
    ) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """``(field, student, teacher)`` for each logits field both outputs have."""
        student = logits_fields(student_output, "student output")
        teacher = logits_fields(teacher_output, "teacher output")
        pairs = [(name, s, teacher[name]) for name, s in student.items() if name in teacher]
        if not pairs:
            raise ValueError(
                f"{self.name}: the student output has logits {sorted(student)} and the teacher "
                f"output {sorted(teacher)}; they share none (both models must return the same "
                "kind of output)"
            )
        return pairs

    def compute(
        self, student_output: Any, teacher_output: Any, student_loss: Any
    ) -> DistillationResult:
        w0, w1 = self.loss_weights
        distill = None
        if w1 > 0:
            if teacher_output is None:
                raise ValueError(
                    f"{self.name}: no teacher output (loss_weights[1] = {w1} > 0 needs one)"
                )
            distill = w1 * self.teacher_student_loss(student_output, teacher_output)
        if w0 > 0:
            if student_loss is None:
                raise ValueError(f"{self.name}: no student loss (loss_weights[0] = {w0} > 0)")
            origin = w0 * student_loss
            total = origin if distill is None else origin + distill
        else:
            assert distill is not None  # the weights sum to 1
            total = distill
        return DistillationResult(total, distill)

    def loss_cal(self, student_output: Any, targets: torch.Tensor) -> torch.Tensor:
        """Student vs labels with ``loss_types[0]`` (INC's ``__call__``; 1.x loops used it)."""
        s = logits_of(student_output, "student output")
        if self.loss_types[0] == "CE":
            return F.cross_entropy(s, targets)
        return F.mse_loss(s, targets)

    def __call__(self, student_output: Any, targets: torch.Tensor) -> torch.Tensor:
        return self.loss_cal(student_output, targets)


# -- 4.2 intermediate layers ------------------------------------------------------------
class _AxisLinear(nn.Module):
    """``Linear(src, dst)`` applied along one axis (the one where the shapes differ)."""

    def __init__(self, axis: int, src: int, dst: int) -> None:
        super().__init__()
        self.axis = axis
        self.dense = nn.Linear(src, dst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x.transpose(self.axis, -1)).transpose(self.axis, -1)


def _make_matcher(student: torch.Tensor, teacher: torch.Tensor, where: str) -> nn.Module:
    if student.dim() != teacher.dim():
        raise ValueError(
            f"{where}: the student feature has shape {tuple(student.shape)} and the teacher "
            f"feature {tuple(teacher.shape)}; they need the same number of dimensions"
        )
    diff = [i for i, (a, b) in enumerate(zip(student.shape, teacher.shape)) if a != b]
    if not diff:
        return nn.Identity()
    if len(diff) > 1:
        raise ValueError(
            f"{where}: the student feature has shape {tuple(student.shape)} and the teacher "
            f"feature {tuple(teacher.shape)}; they may differ in one dimension only"
        )
    axis = diff[0]
    matcher = _AxisLinear(axis, student.shape[axis], teacher.shape[axis])
    matcher.to(device=student.device, dtype=_float(student).dtype)
    matcher.requires_grad_(False)
    return matcher


def _not_a_distribution(x: torch.Tensor) -> bool:
    return bool((torch.abs(x.sum(dim=-1) - 1.0) > 0.2).any().item())


def _one_per_device(features: list[Any], where: str, side: str) -> dict[torch.device, torch.Tensor]:
    out: dict[torch.device, torch.Tensor] = {}
    for f in features:
        if not isinstance(f, torch.Tensor):
            raise TypeError(
                f"{where}: the {side} feature is a {type(f).__name__}, not a tensor; give an "
                "output process (a key, an index such as '0', or a callable) in layer_mappings"
            )
        if f.device in out:
            raise RuntimeError(
                f"{where}: the {side} layer produced {len(features)} outputs on {f.device} "
                "since the last step began; it must run once per forward (call "
                "on_step_begin at each step, and run the student in training mode only for "
                "the step's forward)"
            )
        out[f.device] = f
    return out


class IntermediateLayersKnowledgeDistillationLoss(DistillationLoss):
    """``sum_i w_i * loss_i(matcher_i(student_feat_i), teacher_feat_i)`` (spec 4.2).

    ``layer_mappings`` items: ``[(student_layer, student_proc), (teacher_layer,
    teacher_proc)]``, ``[(student_layer,), (teacher_layer,)]`` or ``[(layer,)]``
    (same name in both). A proc is a key (dict output), a numeric string index
    (tuple / list output) or a callable; '' means the whole output.
    """

    name = "IntermediateLayersKnowledgeDistillationLoss"

    def __init__(
        self,
        layer_mappings: Sequence[Sequence[Any]] = (),
        loss_types: Sequence[str] | None = None,
        loss_weights: Sequence[float] | None = None,
        add_origin_loss: bool = False,
    ) -> None:
        if not isinstance(layer_mappings, (list, tuple)) or not layer_mappings:
            raise ValueError(
                "layer_mappings must be a non-empty list of [(student_layer[, proc]), "
                "(teacher_layer[, proc])] items"
            )
        student_specs: list[LayerSpec] = []
        teacher_specs: list[LayerSpec] = []
        for i, item in enumerate(layer_mappings):
            s, t = _parse_mapping(item, i)
            student_specs.append(s)
            teacher_specs.append(t)
        n = len(student_specs)
        self.loss_types = _check_types(
            "loss_types", list(loss_types) if loss_types else ["MSE"] * n, INTERMEDIATE_TYPES
        )
        self.loss_weights = _check_weights(
            "loss_weights", list(loss_weights) if loss_weights else [1.0 / n] * n
        )
        if not len(self.loss_types) == len(self.loss_weights) == n:
            raise ValueError(
                f"layer_mappings ({n}), loss_types ({len(self.loss_types)}) and loss_weights "
                f"({len(self.loss_weights)}) must have the same length"
            )
        if not isinstance(add_origin_loss, bool):
            raise TypeError(f"add_origin_loss must be a bool, got {add_origin_loss!r}")
        if not any(self.loss_weights):
            raise ValueError("every loss_weight is 0: nothing to distil")
        self.add_origin_loss = add_origin_loss
        self.layer_mappings = [(s.name, t.name) for s, t in zip(student_specs, teacher_specs)]
        self.student_features = FeatureCapture(student_specs, side="student", student=True)
        self.teacher_features = FeatureCapture(teacher_specs, side="teacher", student=False)
        self._loss_funcs: list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = [
            {"MSE": F.mse_loss, "KL": _kl_div_mean, "L1": F.l1_loss}[t] for t in self.loss_types
        ]
        #: one matcher per mapping, created on the first loss (None until then)
        self.feature_matchers: list[nn.Module | None] = [None] * n

    @property
    def needs_teacher_forward(self) -> bool:
        return True

    def clear_features(self) -> None:
        self.student_features.clear()
        self.teacher_features.clear()

    def remove_all_hooks(self) -> None:
        """INC's name: detach the feature hooks from both models."""
        self.student_features.detach()
        self.teacher_features.detach()

    def loss_cal(self) -> torch.Tensor:
        """The weighted feature losses; clears the features."""
        try:
            total: torch.Tensor | None = None
            for i, (s_name, t_name) in enumerate(self.layer_mappings):
                w = self.loss_weights[i]
                if w == 0:
                    continue
                term = self._mapping_loss(i, s_name, t_name) * w
                total = term if total is None else total + term.to(total.device)
            assert total is not None  # at least one weight is > 0 (checked at construction)
            return total
        finally:
            self.clear_features()

    def _mapping_loss(self, i: int, s_name: str, t_name: str) -> torch.Tensor:
        where = f"{self.name} layer_mappings[{i}] ({s_name!r} -> {t_name!r})"
        s_feats = self.student_features.features[i]
        t_feats = self.teacher_features.features[i]
        if not s_feats:
            raise RuntimeError(
                f"{where}: no student feature was recorded since the step began; the student "
                "records only in training mode (call model.train() before its forward)"
            )
        if not t_feats:
            raise RuntimeError(
                f"{where}: no teacher feature was recorded since the step began; the teacher "
                "must run on the step's input (pass teacher_output=None to let the runtime run it)"
            )
        s_by_dev = _one_per_device(s_feats, where, "student")
        t_by_dev = _one_per_device(t_feats, where, "teacher")
        if s_by_dev.keys() != t_by_dev.keys():
            raise RuntimeError(
                f"{where}: student features are on {sorted(map(str, s_by_dev))} and teacher "
                f"features on {sorted(map(str, t_by_dev))}; they must be on the same devices"
            )
        out_dev = _output_device(list(s_by_dev))
        matcher = self.feature_matchers[i]
        if matcher is None:
            matcher = _make_matcher(s_by_dev[out_dev], t_by_dev[out_dev], where)
            self.feature_matchers[i] = matcher
        loss_func = self._loss_funcs[i]
        total: torch.Tensor | None = None
        for dev, s in s_by_dev.items():
            s = matcher(_float(s.to(out_dev)))
            t = _float(t_by_dev[dev].detach().to(out_dev))
            _same_shape(s, t, "(matched) student feature", "teacher feature", where)
            if self.loss_types[i] == "KL":
                if isinstance(matcher, _AxisLinear):
                    s = F.log_softmax(s, dim=-1)
                else:
                    if _not_a_distribution(s):
                        s = F.softmax(s, dim=-1)
                    s = torch.log(s + 1e-9)
                if _not_a_distribution(t):
                    t = F.softmax(t, dim=-1)
            term = loss_func(s, t)
            total = term if total is None else total + term
        assert total is not None
        return total

    def compute(
        self, student_output: Any, teacher_output: Any, student_loss: Any
    ) -> DistillationResult:
        distill = self.loss_cal()
        total = distill + student_loss if self.add_origin_loss else distill
        return DistillationResult(total, distill)

    def __call__(self, student_output: Any, targets: Any) -> int:
        """INC returns 0 here: this loss has no student-vs-label part."""
        return 0


def _output_device(devices: list[torch.device]) -> torch.device:
    if len(devices) == 1:
        return devices[0]
    cuda0 = torch.device("cuda", 0)
    return cuda0 if cuda0 in devices else devices[0]


def _parse_mapping(item: Any, index: int) -> tuple[LayerSpec, LayerSpec]:
    form = (
        "[(layer,)], [(student_layer,), (teacher_layer,)] or [(student_layer, proc), "
        "(teacher_layer, proc)]"
    )
    if not isinstance(item, (list, tuple)) or len(item) not in (1, 2):
        raise ValueError(f"layer_mappings[{index}] = {item!r}; expected {form}")
    pair = [item[0], item[0]] if len(item) == 1 else list(item)
    specs = []
    for side in pair:
        if isinstance(side, str):
            name, proc = side, ""
        elif isinstance(side, (list, tuple)) and len(side) in (1, 2) and isinstance(side[0], str):
            name = side[0]
            proc = side[1] if len(side) == 2 else ""
        else:
            raise ValueError(f"layer_mappings[{index}] = {item!r}; expected {form}")
        if not (isinstance(proc, str) or callable(proc)):
            raise ValueError(
                f"layer_mappings[{index}]: the output process {proc!r} must be a key, a numeric "
                "string index or a callable"
            )
        processor: Processor = proc
        specs.append(LayerSpec(name, processor))
    return specs[0], specs[1]


# -- 4.3 self-distillation ------------------------------------------------------------------
class SelfKnowledgeDistillationLoss(DistillationLoss):
    """Losses between named entries of the student's output dict (spec 4.3).

    ``layer_mappings`` is a list of groups, each a list of ``[student_key,
    teacher_key]`` pairs; group 1 (the logits group) is compared at temperature
    ``T``. Each group counts once (upstream counts group g ``G - g`` times).
    """

    name = "SelfKnowledgeDistillationLoss"

    def __init__(
        self,
        layer_mappings: Sequence[Sequence[Sequence[str]]] = (),
        temperature: float = 1.0,
        loss_types: Sequence[str] | None = None,
        loss_weights: Sequence[float] | None = None,
        add_origin_loss: bool = False,
    ) -> None:
        if not isinstance(layer_mappings, (list, tuple)) or not layer_mappings:
            raise ValueError(
                "layer_mappings must be a non-empty list of groups of [student_key, teacher_key]"
            )
        groups: list[list[tuple[str, str]]] = []
        for g, group in enumerate(layer_mappings):
            if not isinstance(group, (list, tuple)) or not group:
                raise ValueError(
                    f"layer_mappings[{g}] = {group!r}; expected a list of [student_key, "
                    "teacher_key] pairs"
                )
            pairs = []
            for pair in group:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ValueError(
                        f"layer_mappings[{g}]: {pair!r} must be a [student_key, teacher_key] pair"
                    )
                pairs.append((pair[0], pair[1]))
            groups.append(pairs)
        n = len(groups)
        self.layer_mappings = groups
        self.temperature = _check_temperature(temperature)
        self.loss_types = _check_types(
            "loss_types", list(loss_types) if loss_types else ["CE"] * n, SELF_TYPES
        )
        self.loss_weights = _check_weights(
            "loss_weights", list(loss_weights) if loss_weights else [1.0 / n] * n
        )
        if not len(self.loss_types) == len(self.loss_weights) == n:
            raise ValueError(
                f"layer_mappings ({n} groups), loss_types ({len(self.loss_types)}) and "
                f"loss_weights ({len(self.loss_weights)}) must have the same length"
            )
        if not isinstance(add_origin_loss, bool):
            raise TypeError(f"add_origin_loss must be a bool, got {add_origin_loss!r}")
        if not any(self.loss_weights):
            raise ValueError("every loss_weight is 0: nothing to distil")
        self.add_origin_loss = add_origin_loss
        self._loss_funcs: list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = [
            {"CE": soft_cross_entropy, "KL": kl_divergence, "L2": l2_distance}[t]
            for t in self.loss_types
        ]

    def loss_cal(self, student_output: Any) -> torch.Tensor:
        if not isinstance(student_output, Mapping):
            raise TypeError(
                f"{self.name} needs the model's forward to return a dict of named outputs, "
                f"got a {type(student_output).__name__}"
            )
        total: torch.Tensor | None = None
        for g, pairs in enumerate(self.layer_mappings):
            w = self.loss_weights[g]
            if w == 0:
                continue
            for s_key, t_key in pairs:
                s = _float(self._entry(student_output, s_key, g))
                t = _float(self._entry(student_output, t_key, g)).to(s.device)
                _same_shape(s, t, f"entry {s_key!r}", f"entry {t_key!r}", f"{self.name} group {g}")
                if g == 1:  # the logits group, at temperature T (as upstream)
                    s, t = s / self.temperature, t / self.temperature
                term = self._loss_funcs[g](s, t) * w
                total = term if total is None else total + term.to(total.device)
        assert total is not None  # at least one weight is > 0 (checked at construction)
        return total

    def _entry(self, output: Mapping[str, Any], key: str, group: int) -> torch.Tensor:
        value = output.get(key)
        if not isinstance(value, torch.Tensor):
            raise KeyError(
                f"{self.name} group {group}: the student output has no tensor {key!r} "
                f"(keys: {sorted(map(str, output.keys()))})"
            )
        return value

    def compute(
        self, student_output: Any, teacher_output: Any, student_loss: Any
    ) -> DistillationResult:
        distill = self.loss_cal(student_output)
        total = distill + student_loss if self.add_origin_loss else distill
        return DistillationResult(total, distill)

    def __call__(self, student_output: Any, targets: Any) -> int:
        """INC returns 0 here: this loss has no student-vs-label part."""
        return 0


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
