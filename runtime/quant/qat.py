"""Quantization-aware training as a `Compressor` (INC 2.x `QuantizationAwareTrainingCallbacks`).

INC (spec 1.5) prepares in `on_train_begin` and converts in `on_train_end`;
here the conversion happens in `finalize()`, after every compressor's
`on_train_end`, so pruning and distillation finish on the trained float model
whatever the list order (the manager's contract, see `compressor.py`).

* `on_train_begin`: prepare the wrapper's model for QAT (FX, else eager; no
  copy, the user's optimizer keeps training the same Parameters), put it in
  train mode and hand it to the wrapper (`wrapper.model = prepared`), which
  tells every compressor through `on_model_replaced`. Calling it again (a
  second epoch loop, a Trainer callback plus a hand-written call) does not
  prepare twice.
* `finalize`: convert a copy to int8 (CPU, eval), hand it to the wrapper and
  store the recipe in `wrapper.q_config` (what `Model.save` writes under
  `best_configure` and `rebuild_quantized` reads back). The prepared model is
  not converted in place: a script that still holds it (`model = cm.model`
  before training) keeps a working fake-quant model on its device, so its own
  evaluation and `save_pretrained` after the loop still run; `cm.model` is the
  int8 one.

torch.distributed (DDP): the bare model is prepared (a model given wrapped in
`DistributedDataParallel` is refused with the order to use); DDP may wrap
`cm.model` before or after `on_train_begin`, since preparation keeps every
Parameter. Under torch.distributed the observers are synced across ranks after
every optimizer step and before conversion (`sync.ObserverSync`), so every rank
trains with, and converts to, the same scales and zero points.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import distributed, int8_device
from ..compressor import Compressor
from .backend import QAT, RECIPE_FORMAT, PreparedModel, QuantBackend, QuantSpec, get_recipe
from .copies import QuantizedCopies
from .fake_quant_fp32 import fake_quant_in_fp32
from .modules import supports_eager
from .sync import ObserverSync

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)


class QATCompressor(Compressor):
    """Built from a `QuantizationAwareTrainingConfig` (ours or INC's: attributes only)."""

    kind = "qat"

    def __init__(self, conf: Any, backend: QuantBackend | None = None) -> None:
        super().__init__(conf)
        if backend is None:
            from . import get_backend

            backend = get_backend()
        self.backend = backend
        self.spec = QuantSpec.from_config(conf, approach=QAT)
        self.prepared: PreparedModel | None = None
        self.quantized: nn.Module | None = None
        #: `prepare_compression(..., in_place=True)`: the module given is prepared and
        #: converted itself (the eager per-module path), so whoever holds it (the code
        #: that built a trainer around it) holds the int8 model after training
        self.in_place = False
        #: set at preparation under torch.distributed
        self.observer_sync: ObserverSync | None = None
        #: moving averages of the prepared model, converted to int8 with it (`copies.py`)
        self.copies = QuantizedCopies()

    def track_copy(self, holder: Any) -> None:
        """Convert `holder`'s fake-quant copy of the model to int8 with the model."""
        self.copies.track(holder, self.prepared.model if self.prepared is not None else None)

    def bind(self, wrapper: Any) -> None:
        if distributed.is_data_parallel(wrapper.model):
            raise TypeError(
                "quantization-aware training needs the bare model, got a "
                f"{type(wrapper.model).__name__}: call prepare_compression(model, confs) on "
                "the module itself, then wrap cm.model (before or after "
                "cm.callbacks.on_train_begin()): "
                "model = DistributedDataParallel(cm.model)"
            )
        super().bind(wrapper)

    def _require_wrapper(self) -> Any:
        if self.wrapper is None:
            raise RuntimeError("QATCompressor is not bound to a model wrapper (call bind first)")
        return self.wrapper

    # -- hooks -----------------------------------------------------------------
    def on_train_begin(self, dataloader: Any = None) -> None:
        wrapper = self._require_wrapper()
        if self.quantized is not None:
            raise RuntimeError(
                "on_train_begin after the QAT model was converted to int8; "
                "an int8 model cannot be trained"
            )
        if self.prepared is not None:
            self.prepared.model.train()
            if wrapper.model is not self.prepared.model:
                wrapper.model = self.prepared.model
            return
        spec = self.spec
        if self.in_place:
            if supports_eager(wrapper.model):
                raise TypeError(
                    f"in_place QAT swaps the model's Linear / Conv submodules in place, and the "
                    f"model is itself a {type(wrapper.model).__name__}: wrap it in a module "
                    "(nn.Sequential(layer)) before handing it over, or prepare without "
                    "in_place and use compression_manager.model"
                )
            if spec.path in (None, "fx"):
                spec = spec.with_path("eager")  # FX would hand back a new GraphModule
        prepared = self.backend.prepare_qat(wrapper.model, spec)
        prepared.model.train()
        fake_quant_in_fp32(prepared.model)
        self.prepared = prepared
        int8_device.attach_fake_quant_recipe(
            prepared.model,
            {
                "format": RECIPE_FORMAT,
                "approach": QAT,
                "path": prepared.path,
                "reduce_range": prepared.info.get("reduce_range"),
                "spec": prepared.spec.with_path(prepared.path).to_dict(),
            },
        )
        if prepared.fallback_reason:
            log.info("QAT uses the eager path: %s", prepared.fallback_reason)
        if distributed.is_distributed():
            self.observer_sync = ObserverSync(prepared.model)
        wrapper.model = prepared.model

    def on_after_compute_loss(
        self,
        input: Any,  # noqa: A002 - INC's parameter name
        student_output: Any,
        student_loss: Any,
        teacher_output: Any = None,
    ) -> None:
        if self.observer_sync is not None:
            self.observer_sync.start()  # overlaps the all-reduce with backward
        return None

    def on_after_optimizer_step(self) -> None:
        if self.observer_sync is not None:
            self.observer_sync.step()

    def on_step_end(self) -> None:
        if self.observer_sync is not None:
            self.observer_sync.flush()  # a loop that never reports the optimizer step

    def finalize(self) -> None:
        wrapper = self._require_wrapper()
        if self.quantized is not None:
            return
        if self.prepared is None:
            log.warning(
                "QAT was never prepared (on_train_begin was not called): the model stays float"
            )
            return
        if wrapper.model is not self.prepared.model:
            log.warning(
                "the wrapper's model was replaced after QAT preparation; "
                "converting the QAT-prepared model"
            )
        if self.observer_sync is None and distributed.is_distributed():
            self.observer_sync = ObserverSync(self.prepared.model)  # initialised late
        if self.observer_sync is not None:
            self.observer_sync.finish()
        quantized = self.backend.convert(self.prepared, inplace=self.in_place)
        if self.in_place:
            # its holders call it directly, not through the wrapper's device bridge
            int8_device.keep_on_cpu(quantized)
        self.quantized = quantized
        self.copies.convert(self.backend, self.prepared)
        wrapper.q_config = get_recipe(quantized)
        wrapper.model = quantized

    def fake_quant_recipe(self) -> dict[str, Any] | None:
        """While QAT trains (prepared in eager mode, not yet converted): what a checkpoint of
        the fake-quant model needs to be converted to the same int8 model later
        (`OptimizedModel.from_pretrained` reads it from the saved config); None otherwise."""
        prepared = self.prepared
        if prepared is None or self.quantized is not None or prepared.path != "eager":
            return None
        return {
            "format": RECIPE_FORMAT,
            "approach": QAT,
            "path": "eager",
            "reduce_range": prepared.info.get("reduce_range"),
            "spec": prepared.spec.to_dict(),
        }

    def summary(self) -> dict[str, Any]:
        prepared, model = self.prepared, self.quantized
        return {
            "qat_path": prepared.path if prepared else None,
            "qat_fallback_reason": prepared.fallback_reason if prepared else None,
            "quantized_modules": (
                self.backend.count_quantized_modules(model) if model is not None else 0
            ),
        }
