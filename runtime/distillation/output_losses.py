"""The losses on model outputs: `KnowledgeDistillationLoss` on logits (spec 4.1) and
`SelfKnowledgeDistillationLoss` on the student's own output dict (spec 4.3)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from .loss_base import (
    KD_STUDENT_TYPES,
    KD_TEACHER_TYPES,
    SELF_TYPES,
    DistillationLoss,
    DistillationResult,
    _check_temperature,
    _check_terms,
    _check_types,
    _check_weights,
    _float,
    _same_shape,
    kl_divergence,
    l2_distance,
    logits_fields,
    logits_of,
    soft_cross_entropy,
)


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
        teacher = logits_fields(_like_the_student(teacher_output, student), "teacher output")
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


def _like_the_student(teacher_output: Any, student: dict[str, torch.Tensor]) -> Any:
    """The teacher's tuple output narrowed to its element shaped like the student's logits
    when the script hands over one element of its own: `loss, logits = model(x,
    labels=y, return_dict=False)` gives the student's logits, while the teacher, called
    with the same inputs, returns `(loss, logits)`, whose first element is the loss."""
    logits = student.get("logits")
    if not isinstance(teacher_output, tuple | list) or logits is None or len(student) != 1:
        return teacher_output
    first = teacher_output[0] if teacher_output else None
    if isinstance(first, torch.Tensor) and first.shape == logits.shape:
        return teacher_output
    shaped = [t for t in teacher_output if isinstance(t, torch.Tensor) and t.shape == logits.shape]
    return shaped[0] if shaped else teacher_output


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
        self.loss_types, self.loss_weights = _check_terms(
            loss_types, loss_weights, add_origin_loss, n, "CE", SELF_TYPES, f"{n} groups"
        )
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
