"""Averaged copies of the QAT model: the moving average of its weights that many training
scripts keep beside it (YOLOv5's `ModelEMA`, timm's `ModelEma*`, torch's `AveragedModel`,
`ema = copy.deepcopy(model)`) and evaluate and save instead of it.

Built after QAT preparation, such a copy is a deep copy of the fake-quant model, and its
updates average the prepared model's parameters (and, for most, its floating buffers:
the observers' ranges) by name. At the end of training `QuantizedCopies.convert` converts
each copy's fake-quant module to int8 as the model is converted and puts the int8 module
back where its holder keeps it (`ema.ema`, `model_ema.module`); a copy held by a bare name
is handed back by `CompressionManager.converted_copy(copy)` for the script to rebind.
Not part of INC 2.x: `CompressionManager.track_copy` is this runtime's own.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from .. import int8_device
from .backend import PreparedModel, QuantBackend

__all__ = ["QuantizedCopies", "fake_quant_module"]

log = logging.getLogger(__name__)

#: where the averaging classes keep their module, looked at first: torch's `AveragedModel`
#: and timm's `ModelEmaV2` / `V3` (`module`), YOLOv5's `ModelEMA` and timm's `ModelEma`
#: (`ema`); then any other attribute (a script's own class: `self.shadow = deepcopy(model)`)
_ATTRIBUTES = ("module", "ema")


def _has_fake_quant(module: nn.Module) -> bool:
    return any(isinstance(m, torch.ao.quantization.FakeQuantizeBase) for m in module.modules())


def fake_quant_module(holder: Any, model: nn.Module | None = None) -> tuple[str | None, nn.Module]:
    """(attribute of `holder` or None for `holder` itself, the fake-quant module it holds):
    the runtime wrapper's copy, a known attribute, an attribute that is a copy of `model`
    (the prepared model), `holder` itself when it is a module (a bare copy: never one of
    its layers), else any attribute that is a fake-quant module. ValueError when it holds
    none (the copy was made before QAT was prepared)."""
    from ..model import Model

    if isinstance(holder, Model):  # `deepcopy(cm.model)`
        return None, holder.model
    children = holder._modules if isinstance(holder, nn.Module) else vars(holder)
    found = [
        (name, value)
        for name in (*_ATTRIBUTES, *children)
        if isinstance(value := getattr(holder, name, None), nn.Module) and _has_fake_quant(value)
    ]
    for name, value in found:
        if name in _ATTRIBUTES or isinstance(value, Model) or _same_kind(value, model):
            return name, _unwrapped(value)
    if isinstance(holder, nn.Module) and _has_fake_quant(holder):
        return None, _unwrapped(holder)
    if found:
        return found[0][0], _unwrapped(found[0][1])
    raise ValueError(
        f"track_copy: {type(holder).__name__} holds no fake-quant copy of the model: build "
        "the moving average after prepare_compression(...) and on_train_begin(), from "
        "compression_manager.model"
    )


def _same_kind(value: nn.Module, model: nn.Module | None) -> bool:
    """`value` is of `model`'s class (or of the class a GraphModule's deep copy makes)."""
    return model is not None and (
        type(value) is type(model) or type(model) in type(value).__bases__
    )


def _unwrapped(module: nn.Module) -> nn.Module:
    """The module inside a copy of the runtime's `Model` wrapper (`deepcopy(cm.model)`) or
    of a compiled model."""
    from ..model import Model

    if isinstance(module, Model):
        module = module.model
    return getattr(module, "_orig_mod", module)  # `torch.compile(model)`'s copy


def _unobserved(observer: nn.Module) -> bool:
    low = getattr(observer, "min_val", None)
    return isinstance(low, torch.Tensor) and (
        low.numel() == 0 or not bool(torch.isfinite(low).all())
    )


def _fill_unobserved(copy: nn.Module, model: nn.Module) -> None:
    """Give the copy's fake quantizers that never observed a value (an `AveragedModel`
    that averages parameters only and was never run) the model's ranges: the averaged
    weights see activations of the same ranges."""
    theirs = dict(model.named_modules())
    for name, module in copy.named_modules():
        if not isinstance(module, torch.ao.quantization.FakeQuantizeBase):
            continue
        observer = getattr(module, "activation_post_process", None)
        source = theirs.get(name)
        if observer is None or source is None or not _unobserved(observer):
            continue
        module.load_state_dict(source.state_dict())


def _same_class_as_the_model(copy: nn.Module, model: nn.Module) -> None:
    """A deep copy of an FX-prepared model whose class carries the script's methods
    (`module_tree._keep_model_api`) gets a new GraphModule subclass of that class with a
    second call wrapper, and calling it recurses forever: the copy takes the model's
    class back (the same graph, so the same generated forward)."""
    kind = type(model)
    if (
        isinstance(model, torch.fx.GraphModule)
        and type(copy) is not kind
        and type(copy).__bases__ == (kind,)
    ):
        copy.__class__ = kind


def _shape_weight_quantizers(module: nn.Module) -> None:
    """Run each weight's fake quantizer once on the weight: a per-channel one sizes its
    scale and zero point (one value until then) to the channels, as the first forward would
    with the same weights, so the copy's buffers match the model's when averaged by name."""
    with torch.no_grad():
        for layer in module.modules():
            quantizer, weight = (
                getattr(layer, "weight_fake_quant", None),
                getattr(layer, "weight", None),
            )
            if isinstance(quantizer, nn.Module) and isinstance(weight, torch.Tensor):
                quantizer(weight)


class _TrackedCopy:
    def __init__(self, holder: Any) -> None:
        self.holder = holder
        self.int8: nn.Module | None = None
        self.rebound = False  # the int8 module was put back into the holder


class QuantizedCopies:
    """The copies a `QATCompressor` converts to int8 with the model."""

    def __init__(self) -> None:
        self.copies: list[_TrackedCopy] = []

    def track(self, holder: Any, model: nn.Module | None) -> None:
        """Convert `holder`'s copy with `model` (the prepared model, once prepared)."""
        if holder is None or any(c.holder is holder for c in self.copies):
            return
        tracked = _TrackedCopy(holder)
        module = fake_quant_module(holder, model)[1]  # refused now, not after training
        if model is not None:
            _same_class_as_the_model(module, model)
            _shape_weight_quantizers(model)
        _shape_weight_quantizers(module)
        self.copies.append(tracked)

    def convert(self, backend: QuantBackend, prepared: PreparedModel) -> None:
        """Each copy's fake-quant module, converted to int8 like `prepared.model`, put back
        where its holder keeps it."""
        for copy in self.copies:
            if copy.int8 is not None:
                continue
            attribute, module = fake_quant_module(copy.holder, prepared.model)
            _fill_unobserved(module, prepared.model)
            int8 = backend.convert(replace(prepared, model=module), inplace=True)
            int8_device.keep_on_cpu(int8)  # the script calls it directly, on its device
            if attribute is not None:
                setattr(copy.holder, attribute, int8)
                copy.rebound = True
            copy.int8 = int8
            log.info(
                "QAT: the averaged copy %s converted to int8",
                type(copy.holder).__name__ + (f".{attribute}" if attribute else ""),
            )

    def converted(self, holder: Any) -> Any:
        """What the script should hold for `holder` after training: `holder` itself when
        the int8 module was put back into it, the int8 module for a bare copy."""
        for copy in self.copies:
            if copy.holder is holder:
                if copy.int8 is None:
                    raise RuntimeError(
                        "converted_copy before on_train_end: the copy is converted to int8 "
                        "with the model at the end of training"
                    )
                return holder if copy.rebound else copy.int8
        raise ValueError("converted_copy: this copy was not given to track_copy")
