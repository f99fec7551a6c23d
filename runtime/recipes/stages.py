"""The QAT, distillation and LR-scheduler parts of a recipe, on the runtime's own
compressors (`quant.qat`, `distillation`) and `torch.optim.lr_scheduler`.

* Quantizer: the model is prepared for QAT when training begins (so the script's
  `model = cm.model` holds the prepared model and its optimizer keeps training the
  same Parameters); before the policy's `starting_epoch` its fake-quant and
  observers are off, so those epochs train in float. From `starting_epoch` both
  are on; after `ending_epoch` the observers are frozen. The int8 conversion
  happens at the end of training, unless the policy never started (then the
  model stays float and the summary says so). Distiller required
  `starting_epoch: 0`; here a later start is what a distil-then-prune-then-QAT
  pipeline uses.
* Distiller: the runtime's knowledge-distillation loss replaces the loss during
  the epochs its policy fires at; the user's loss elsewhere.
* LR scheduler: built on the training optimizer (given, or the first optimizer
  seen stepping the model's parameters) and stepped at the end of every epoch its
  policy fires at, as Distiller's `LRPolicy`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from .names import first_match
from .schema import Instance, Policy, RecipeError, lr_scheduler_classes

__all__ = ["LRStage", "make_distillation", "make_qat", "set_fake_quant"]

log = logging.getLogger(__name__)


def make_qat(instance: Instance, model: nn.Module) -> Any:
    """The runtime's QAT compressor for a quantizer instance (overrides resolved on `model`,
    first match wins; `null` bits keep a module float)."""
    import re

    from ..config import QuantizationAwareTrainingConfig
    from ..quant.qat import QATCompressor

    args = instance.args
    names = [n for n, _ in model.named_modules() if n]
    op_name_dict: dict[str, Any] = {}
    if args.get("bits_weights", 8) is None and args.get("bits_activations", 8) is None:
        raise RecipeError(
            f"quantizers.{instance.name}: bits_weights and bits_activations are both null, so "
            "nothing would be quantized; drop the quantizer policy instead"
        )
    overrides = args.get("overrides") or {}
    if overrides:
        chosen = first_match(overrides, names, "module", f"quantizers.{instance.name}.overrides")
        for name, setting in chosen.items():
            if setting.get("bits_weights", 8) is None:
                keep_float = {"dtype": ["fp32"]}
                op_name_dict[re.escape(name)] = {"weight": keep_float, "activation": keep_float}
    conf = QuantizationAwareTrainingConfig(
        backend=args.get("backend", "default"), op_name_dict=op_name_dict or None
    )
    return QATCompressor(conf)


def set_fake_quant(model: nn.Module, fake_quant: bool, observe: bool) -> None:
    from torch.ao import quantization as tq

    model.apply(tq.enable_fake_quant if fake_quant else tq.disable_fake_quant)
    model.apply(tq.enable_observer if observe else tq.disable_observer)


def make_distillation(instance: Instance, teacher: nn.Module | None) -> Any:
    from ..config import DistillationConfig, KnowledgeDistillationLossConfig
    from ..distillation import DistillationCompressor

    if teacher is None:
        raise RecipeError(
            f"distillers.{instance.name} needs a teacher model: pass "
            "RecipeConfig(recipe, teacher_model=teacher) (neural-coder optimize --recipe does, "
            "with --teacher)"
        )
    args = instance.args
    distill, student = float(args.get("distill_wt", 0.5)), float(args.get("student_wt", 0.5))
    if distill + student <= 0:
        raise RecipeError(f"distillers.{instance.name}: distill_wt + student_wt must be > 0")
    criterion = KnowledgeDistillationLossConfig(
        temperature=float(args.get("temperature", 1.0)),
        loss_types=list(args.get("loss_types", ["CE", "KL"])),
        loss_weights=[student / (student + distill), distill / (student + distill)],
    )
    return DistillationCompressor(DistillationConfig(teacher, criterion))


class LRStage:
    """One `lr_schedulers` instance and its policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.instance = policy.instance
        self.scheduler: Any = None
        self.lrs: list[float] = []
        self.steps = 0

    def build(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scheduler is not None:
            return
        cls = lr_scheduler_classes()[self.instance.cls]
        try:
            self.scheduler = cls(optimizer, **self.instance.args)
        except (TypeError, ValueError) as error:
            raise RecipeError(f"lr_schedulers.{self.instance.name}: {error}") from None
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    def on_epoch_end(self, epoch: int) -> None:
        if self.scheduler is None or not self.policy.fires(epoch):
            return
        self.scheduler.step()
        self.steps += 1
        self.lrs.append(float(self.scheduler.optimizer.param_groups[0]["lr"]))

    def describe(self) -> str:
        if self.scheduler is None:
            return "never built: no optimizer stepped the model's parameters"
        return f"stepped {self.steps} time(s), lr {self.lrs[0]:.4g} -> {self.lrs[-1]:.4g}"


class OptimizerFinder:
    """The optimizer that steps `params`, found at its first `step()` (a global
    pre-step hook, removed as soon as it is found or training ends)."""

    def __init__(self, params: list[nn.Parameter], found: Any) -> None:
        ids = {id(p) for p in params}
        self._found = found

        def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            if any(id(p) in ids for g in optimizer.param_groups for p in g["params"]):
                self.remove()
                self._found(optimizer)

        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self._handle: Any = register_optimizer_step_pre_hook(hook)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
