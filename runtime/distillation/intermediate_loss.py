"""`IntermediateLayersKnowledgeDistillationLoss` (spec 4.2): losses between captured
features of named submodules, through a lazily created shape matcher."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .features import FeatureCapture, LayerSpec, Processor
from .loss_base import (
    INTERMEDIATE_TYPES,
    DistillationLoss,
    DistillationResult,
    _check_terms,
    _float,
    _kl_div_mean,
    _same_shape,
)


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
        self.loss_types, self.loss_weights = _check_terms(
            loss_types, loss_weights, add_origin_loss, n, "MSE", INTERMEDIATE_TYPES, f"{n}"
        )
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
