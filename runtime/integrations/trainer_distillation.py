"""`with_distillation`: a Trainer's `compute_loss` returning the distillation loss
(see `neural_coder.runtime.integrations.transformers`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from typing import Any

import torch

from .hooks import check_manager

# -- training: distillation through compute_loss ------------------------------------------
_WRAPPED = "_neural_coder_distillation_manager"


def with_distillation(trainer: Any, compression_manager: Any) -> Any:
    """Make `trainer.compute_loss` return the distillation loss; returns `trainer`.

    The wrapper runs the trainer's own `compute_loss` (a subclass override too,
    with its `num_items_in_batch` and other arguments) with `return_outputs=True`,
    then returns `compression_manager.callbacks.on_after_compute_loss(inputs,
    outputs, loss)`: the teacher runs on a copy of the inputs taken before
    `compute_loss` could pop the labels. Only training steps are distilled
    (`model.training`); evaluation losses stay the plain ones.

    Gradient accumulation: when the Trainer treats the loss as already
    normalized over the accumulated batch (`loss_is_scaled_for_ga`, or a model
    that accepts `num_items_in_batch`), the distillation term is weighted by this
    micro-batch's share of the labelled items, as the student loss is; otherwise
    the Trainer divides the whole loss by the accumulation steps.
    """
    conf = getattr(compression_manager, "conf", None)
    if getattr(conf, "distillation", None) is None:
        raise ValueError(
            "with_distillation needs a compression manager built with a DistillationConfig "
            "(prepare_compression(model, [DistillationConfig(teacher_model, ...), ...])); "
            "this one has none, so there is no distillation loss to add"
        )
    callbacks = check_manager(compression_manager, "with_distillation")
    current = getattr(trainer, "compute_loss", None)
    if not callable(current):
        raise TypeError(f"{type(trainer).__name__} has no compute_loss method to wrap")
    wrapped_for = getattr(current, _WRAPPED, None)
    if wrapped_for is compression_manager:
        return trainer
    if wrapped_for is not None:
        raise ValueError(
            "with_distillation was already applied to this trainer with another manager"
        )
    original = current

    @functools.wraps(original)
    def compute_loss(
        model: Any,
        inputs: Any,
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
        **kwargs: Any,
    ) -> Any:
        if not getattr(model, "training", True):
            return original(
                model,
                inputs,
                return_outputs=return_outputs,
                num_items_in_batch=num_items_in_batch,
                **kwargs,
            )
        teacher_inputs = dict(inputs) if isinstance(inputs, Mapping) else inputs
        result = original(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch, **kwargs
        )
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"{type(trainer).__name__}.compute_loss(..., return_outputs=True) must return "
                "(loss, outputs); distillation needs the student's outputs"
            )
        loss, outputs = result
        share = _micro_batch_share(trainer, teacher_inputs, num_items_in_batch)
        if share is None:
            total = _distilled(callbacks, teacher_inputs, outputs, loss)
        elif float(share) == 0.0:  # no labelled item here: nothing to weigh
            total = loss
        else:
            total = _distilled(callbacks, teacher_inputs, outputs, loss / share) * share
        return (total, outputs) if return_outputs else total

    setattr(compute_loss, _WRAPPED, compression_manager)
    trainer.compute_loss = compute_loss
    return trainer


def _distilled(callbacks: Any, inputs: Any, outputs: Any, loss: torch.Tensor) -> torch.Tensor:
    result = callbacks.on_after_compute_loss(inputs, outputs, loss)
    if isinstance(result, list):  # INC 2.x: [] without a loss, a list with several
        return result[-1] if result else loss
    return loss if result is None else result


def _micro_batch_share(trainer: Any, inputs: Any, num_items_in_batch: Any) -> Any:
    """This micro-batch's labelled items / the accumulated batch's, when the Trainer
    will not divide the loss by the accumulation steps itself; else None."""
    if num_items_in_batch is None:
        return None
    scaled = getattr(trainer, "loss_is_scaled_for_ga", None)
    if scaled is None:
        scaled = bool(getattr(trainer, "model_accepts_loss_kwargs", False)) or (
            getattr(trainer, "compute_loss_func", None) is not None
        )
    if not scaled:
        return None
    count = getattr(trainer, "_get_num_items_in_batch", None)
    items = None
    if callable(count):  # the Trainer's own count, so both sides are counted alike
        with contextlib.suppress(Exception):
            items = count([inputs], getattr(trainer.args, "device", None))
    if items is None and isinstance(inputs, Mapping) and torch.is_tensor(inputs.get("labels")):
        items = inputs["labels"].ne(-100).sum()
    if items is None:
        steps = getattr(trainer, "current_gradient_accumulation_steps", 1) or 1
        return 1.0 / steps
    return items / num_items_in_batch
