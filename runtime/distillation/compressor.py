"""Knowledge distillation as a `Compressor` (INC 2.x ``DistillationCallbacks``, spec 1.5).

Built from a ``DistillationConfig(teacher_model, criterion, optimizer)`` (ours
or INC's: attributes only). ``criterion.config`` holds exactly one
``{LossName: params}`` entry (`losses.create_criterion`); ``optimizer`` is
ignored, as in INC.

* `bind`: the teacher is frozen (``eval()``, ``requires_grad_(False)`` on every
  parameter it does not share with the student) and, for the intermediate-layer
  loss, feature hooks go on both models.
* `on_step_begin`: clear the captured features.
* `on_after_compute_loss(input, student_output, student_loss, teacher_output=None)`:
  when the loss needs the teacher and no ``teacher_output`` is given, run the
  teacher on ``input`` under ``torch.no_grad()`` with INC's dispatch (a mapping
  as ``**kwargs``, a tuple / list as ``*args`` when the forward takes them,
  else one argument), after moving the teacher (once) to the student's device
  and the input to the teacher's. Return the distillation loss, which replaces
  the user's loss.
* `on_model_replaced`: the student's feature hooks move to the new module by name.
* `on_train_end`: the feature hooks are removed (INC 2.x leaves them; here a
  trained model carries no hooks, and nothing records after training);
  `on_train_begin` puts them back if training starts again.

Self-distillation (the teacher is the student, INC quirk 9.7): INC puts the
shared model in eval mode for the teacher forward and leaves it there, so the
student trains in eval mode from the second step on. Here a teacher that is
the student is never frozen, its forward runs in eval mode with every
submodule's ``training`` flag restored afterwards, and the student's feature
capture is paused during it. `SelfKnowledgeDistillationLoss` reads only the
student's own outputs, so no teacher forward runs for it at all (INC runs one
and discards it).

A student given wrapped in `DistributedDataParallel` is used through the module
inside: layer names carry no `module.` prefix, a teacher that is the bare
student is recognised as the student, and its teacher forward bypasses DDP.
Nothing is shared across ranks: each rank runs its own teacher on its own batch.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import distributed
from ..batches import ModelInputs, tensors_to
from ..compressor import Compressor
from ..config import ConfigValueError
from .losses import (
    DistillationLoss,
    IntermediateLayersKnowledgeDistillationLoss,
    SelfKnowledgeDistillationLoss,
    create_criterion,
)
from .output_mode import student_output_mode

if TYPE_CHECKING:
    from ..model import Model

log = logging.getLogger(__name__)

__all__ = ["DistillationCompressor", "call_model", "move_to_device"]


def move_to_device(obj: Any, device: torch.device) -> Any:
    """Tensors in ``obj`` (nested mappings, tuples, lists, `ModelInputs`) moved to ``device``."""
    return tensors_to(obj, device)


def _accepts(model: nn.Module, args: tuple[Any, ...]) -> bool:
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):  # no signature to check: let the call decide
        return True
    try:
        signature.bind(*args)
    except TypeError:
        return False
    return True


def call_model(model: nn.Module, inputs: Any) -> Any:
    """INC's dispatch: a mapping as ``**kwargs``, a tuple / list as ``*args``, else one argument.

    A tuple / list that the forward cannot take as positional arguments is
    passed as one argument (INC retries that way after any exception; here the
    forward's signature decides, so a forward is never run twice).
    """
    if isinstance(inputs, ModelInputs):
        return model(*inputs.args, **inputs.kwargs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)) and _accepts(model, tuple(inputs)):
        return model(*inputs)
    return model(inputs)


def _device_of(module: nn.Module) -> torch.device | None:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


def _first_tensor_device(obj: Any) -> torch.device | None:
    if isinstance(obj, torch.Tensor):
        return obj.device
    if isinstance(obj, ModelInputs):
        return _first_tensor_device((*obj.args, *obj.kwargs.values()))
    values = obj.values() if isinstance(obj, Mapping) else obj
    if isinstance(obj, (Mapping, tuple, list)):
        for v in values:
            found = _first_tensor_device(v)
            if found is not None:
                return found
    return None


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` inside the block; every submodule's ``training`` flag restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _unwrap(model: Any) -> Any:
    """The torch module inside our `Model` wrapper (a teacher may be given wrapped)."""
    from ..model import Model

    return model.model if isinstance(model, Model) else model


class DistillationCompressor(Compressor):
    """Built from a `DistillationConfig` (ours or INC's: attributes only)."""

    kind = "distillation"

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        self.criterion: DistillationLoss = create_criterion(getattr(conf, "criterion", None))
        teacher = _unwrap(getattr(conf, "teacher_model", None))
        if teacher is not None and not isinstance(teacher, nn.Module):
            raise TypeError(
                f"DistillationConfig.teacher_model must be a torch.nn.Module, got "
                f"{type(teacher).__name__}"
            )
        if teacher is None and not isinstance(self.criterion, SelfKnowledgeDistillationLoss):
            raise ConfigValueError(
                "DistillationConfig",
                "teacher_model",
                None,
                f"a torch.nn.Module (a teacher is required for {self.criterion.name})",
            )
        self.teacher_model: nn.Module | None = teacher
        self.distillation_steps = 0
        self.steps_begun = 0
        self.teacher_forwards = 0
        self._last_distillation: torch.Tensor | None = None
        self._last_total: torch.Tensor | None = None
        self._teacher_is_student = False

    # -- binding --------------------------------------------------------------------------
    def _require_wrapper(self) -> Model:
        if self.wrapper is None:
            raise RuntimeError(
                "DistillationCompressor is not bound to a model wrapper (call bind first)"
            )
        return self.wrapper

    def bind(self, wrapper: Model) -> None:
        super().bind(wrapper)
        student = self._student()
        teacher = self.teacher_model
        self._teacher_is_student = (
            teacher is None or teacher is wrapper or teacher is wrapper.model or teacher is student
        )
        if not self._teacher_is_student:
            assert teacher is not None
            teacher.eval()
            student_params = {id(p) for p in student.parameters()}
            shared = 0
            for p in teacher.parameters():
                if id(p) in student_params:
                    shared += 1
                else:
                    p.requires_grad_(False)
            if shared:
                log.info(
                    "the teacher shares %d parameter tensor(s) with the student; they stay trainable",
                    shared,
                )
        self._attach_features()

    def _student(self) -> nn.Module:
        """The student module (inside a DDP / DataParallel wrapper when given one)."""
        return distributed.unwrap_data_parallel(self._require_wrapper().model)

    def _teacher(self) -> nn.Module:
        """The module that acts as teacher now (the current student when they are one)."""
        if self._teacher_is_student:
            return self._student()
        assert self.teacher_model is not None
        return self.teacher_model

    def _attach_features(self) -> None:
        criterion = self.criterion
        if not isinstance(criterion, IntermediateLayersKnowledgeDistillationLoss):
            return
        student = self._student()
        if not criterion.student_features.attached:
            criterion.student_features.attach(student, "distillation layer_mappings")
        if not criterion.teacher_features.attached:
            # a teacher that is the student records only in its eval-mode teacher forward
            criterion.teacher_features.eval_only = self._teacher_is_student
            criterion.teacher_features.attach(self._teacher(), "distillation layer_mappings")

    def _detach_features(self) -> None:
        if isinstance(self.criterion, IntermediateLayersKnowledgeDistillationLoss):
            self.criterion.remove_all_hooks()

    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None:
        criterion = self.criterion
        if not isinstance(criterion, IntermediateLayersKnowledgeDistillationLoss):
            return
        context = (
            f"after the student model was replaced ({type(old).__name__} -> "
            f"{type(new).__name__}, e.g. by QAT preparation), a distillation layer is gone"
        )
        if criterion.student_features.attached:
            criterion.student_features.attach(new, context)
        if self._teacher_is_student and criterion.teacher_features.attached:
            criterion.teacher_features.attach(new, context)

    # -- hooks --------------------------------------------------------------------------------
    def on_train_begin(self, dataloader: Any = None) -> None:
        self._attach_features()

    def on_step_begin(self, batch_id: int) -> None:
        self.steps_begun += 1
        self.criterion.clear_features()

    def on_after_compute_loss(
        self,
        input: Any,  # noqa: A002 - INC's parameter name
        student_output: Any,
        student_loss: torch.Tensor,
        teacher_output: Any = None,
    ) -> torch.Tensor:
        if teacher_output is None and self.criterion.needs_teacher_forward:
            teacher_output = self.teacher_forward(input)
        result = self.criterion.compute(student_output, teacher_output, student_loss)
        if result.distillation is not None:
            self.distillation_steps += 1
            self._last_distillation = result.distillation.detach()
        self._last_total = result.total.detach() if isinstance(result.total, torch.Tensor) else None
        return result.total

    def on_train_end(self) -> None:
        self._detach_features()
        if self.steps_begun and not self.distillation_steps:
            log.warning(
                "distillation: %d training steps ran but the distillation loss was never "
                "computed (on_after_compute_loss was not called: a Trainer whose "
                "training_step does not call compute_loss?); the model trained without its "
                "teacher",
                self.steps_begun,
            )

    # -- the teacher ---------------------------------------------------------------------------
    def teacher_forward(self, input: Any) -> Any:  # noqa: A002 - INC's parameter name
        """Run the teacher on ``input`` under ``torch.no_grad()`` and return its output."""
        teacher = self._teacher()
        criterion = self.criterion
        capture = (
            criterion
            if isinstance(criterion, IntermediateLayersKnowledgeDistillationLoss)
            else None
        )
        if capture is not None and capture.teacher_features.attached:
            capture.teacher_features.clear()  # only this forward's features count
        if self._teacher_is_student:
            paused = (
                capture.student_features.pausing()
                if capture is not None
                else contextlib.nullcontext()
            )
            device = _device_of(teacher)
            if device is not None:
                input = move_to_device(input, device)
            mode = self._output_mode(teacher)  # the student's flag, read before eval()
            with torch.no_grad(), _eval_mode(teacher), paused, mode:
                output = call_model(teacher, input)
        else:
            self._move_teacher(input)
            if teacher.training:
                teacher.eval()
            device = _device_of(teacher)
            if device is not None:
                input = move_to_device(input, device)
            with torch.no_grad(), self._output_mode(teacher):
                output = call_model(teacher, input)
        self.teacher_forwards += 1
        return output

    def _output_mode(self, teacher: nn.Module) -> contextlib.AbstractContextManager[None]:
        student = self._require_wrapper().model
        return student_output_mode(teacher, student.training)

    def _move_teacher(self, input: Any) -> None:  # noqa: A002 - INC's parameter name
        """Move the teacher to the student's device (first forward, or after the student moved)."""
        assert self.teacher_model is not None
        device = _device_of(self._require_wrapper().model) or _first_tensor_device(input)
        if device is not None and _device_of(self.teacher_model) not in (None, device):
            log.info("moving the distillation teacher to %s", device)
            self.teacher_model.to(device)

    # -- summary -----------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {
            "distillation_steps": self.distillation_steps,
            "distillation_loss_last": (
                None if self._last_distillation is None else float(self._last_distillation)
            ),
            "distillation_total_loss_last": (
                None if self._last_total is None else float(self._last_total)
            ),
            "distillation_loss_type": self.criterion.name,
            "distillation_loss_types": list(self.criterion.loss_types),
            "temperature": self.criterion.temperature,
        }
