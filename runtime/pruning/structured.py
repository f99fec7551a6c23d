"""`WeightPruningConfig(shrink=True)`: the pruning compressor's side of shrinking.

While training, it keeps a pruned output row really silent: the first forward's
inputs are kept as example inputs (one batch, detached), DepGraph finds each pruned
layer's bias and the batch norm that reads it (`shrink.follower_params`), and their
entries for fully pruned rows are masked with the weights. So the model that trains
and is evaluated masked computes exactly what the shrunk model computes.

The layers that write one residual stream (`shrink.coupled_writers`) are ranked on
their mean row score by a row pattern (`1xchannel`), so they prune the same channels
and those channels can leave. This starts at the first pruning step after the first
forward (the graph is traced then): a pruning step before any forward (`start_step=0`)
ranks each layer alone.

At `on_train_end` (after the last pruning step, with the masks training ended with)
`shrink_model` removes the channels, in place: every reference to the model, the
script's own variable included, now holds the smaller model. The parameter count and
an eval-mode forward's latency on the example batch, before and after, go into the
run summary.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..batches import ModelInputs
from .shrink import (
    ShrinkMismatchError,
    ShrinkReport,
    coupled_writers,
    dependency_graph,
    follower_params,
    row_keep,
    shrink_model,
)

if TYPE_CHECKING:
    from .pruners import BasicPruner

__all__ = ["StructuredShrink"]

log = logging.getLogger(__name__)


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(v) for v in value)
    return value


def _prepared_for_qat(model: nn.Module) -> bool:
    from torch.ao.quantization import FakeQuantizeBase

    return any(isinstance(m, FakeQuantizeBase) for m in model.modules())


class StructuredShrink:
    """Example inputs, follower masks and the final shrink of one pruned model."""

    def __init__(self, model: nn.Module) -> None:
        self.example_inputs: Any = None
        self.report: ShrinkReport | None = None
        self.note: str | None = None
        self._followers: dict[str, list[nn.Parameter]] | None = None
        #: groups of pruned layers writing the same channels (`shrink.coupled_writers`)
        self.coupled: list[list[str]] = []
        self._hook = model.register_forward_pre_hook(self._capture, with_kwargs=True)

    def _capture(self, _module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.example_inputs is None:
            if args and kwargs:
                self.example_inputs = ModelInputs(
                    *_detached(tuple(args)), **_detached(dict(kwargs))
                )
            else:
                self.example_inputs = _detached(dict(kwargs) if kwargs else tuple(args))
        self._hook.remove()

    # -- while training -----------------------------------------------------------------
    def followers_pending(self) -> bool:
        """True once, when the example inputs exist and the followers are not known yet."""
        return self._followers is None and self.example_inputs is not None

    def follower_masks(
        self, model: nn.Module, pruners: list[BasicPruner]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(params, masks) that silence the bias and batch norm of every fully pruned row."""
        modules = dict(model.named_modules())
        layers: dict[str, nn.Module] = {}
        masks: dict[str, torch.Tensor] = {}
        for pruner in pruners:
            layers.update((n, modules[n]) for n in pruner.params if n in modules)
            for name, mask in pruner.active_masks().items():
                if name not in pruner.detached and name in modules:
                    masks[name] = mask
        return self.row_follower_masks(model, layers, masks)

    def row_follower_masks(
        self, model: nn.Module, layers: dict[str, nn.Module], masks: dict[str, torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(params, masks) for the followers of `layers` (module name -> module, resolved
        once, at the first call after the first forward) whose weight mask in `masks`
        (module name -> weight-shaped mask) clears whole output rows."""
        if self.example_inputs is None:
            return [], []
        if self._followers is None:
            try:
                dg = dependency_graph(model, self.example_inputs)
                self._followers = follower_params(model, self.example_inputs, layers, dg)
                self.coupled = coupled_writers(dg, layers)
            except Exception as exc:  # a model DepGraph cannot trace: shrink will say so
                log.warning("shrink: the layers after pruned rows were not found: %s", exc)
                self._followers = {}
        params: list[torch.Tensor] = []
        out: list[torch.Tensor] = []
        for name, mask in masks.items():
            keep = row_keep(mask)
            if bool(keep.all()):
                continue
            for p in self._followers.get(name, []):
                if p.shape == keep.shape:
                    params.append(p)
                    out.append(keep.to(device=p.device, dtype=p.dtype))
        return params, out

    def couple(self, pruners: list[BasicPruner]) -> None:
        """Row-pattern (`1xchannel`) pruners rank the layers writing one residual stream
        together, when all of them are theirs."""
        for pruner in pruners:
            pattern = pruner.pattern
            if getattr(pattern, "n", None) == 1 and getattr(pattern, "m", None) == "channel":
                pruner.coupled = [g for g in self.coupled if all(n in pruner.params for n in g)]

    # -- at the end -------------------------------------------------------------------------
    def shrink(self, model: nn.Module, example_inputs: Any = None) -> dict[str, Any]:
        """Remove the pruned channels of `model` in place; the summary keys."""
        self._hook.remove()
        inputs = example_inputs if example_inputs is not None else self.example_inputs
        if inputs is None:
            self.note = self.note or (
                "the model never ran forward during training, so there were no example "
                "inputs to trace; call compression_manager.shrink(example_inputs)"
            )
        elif _prepared_for_qat(model):
            self.note = (
                "the model is prepared for quantization-aware training (fake-quant modules); "
                "channels are removed from float models only: prune and shrink first, then QAT"
            )
        else:
            try:
                self.report = shrink_model(model, inputs, measure=True)
                self.note = None
            except ShrinkMismatchError as exc:
                self.note = str(exc)
        if self.report is None:
            log.warning("shrink: the model was not shrunk: %s", self.note)
            return {"shrink_note": self.note}
        out = self.report.as_summary()
        if hasattr(model, "config") and hasattr(model, "save_pretrained"):
            out["shrink_note"] = (
                "the model's Hugging Face config still names the original sizes, so "
                "from_pretrained cannot load what save_pretrained writes: save the whole "
                "model (torch.save(model, f)) to keep the shrunk one"
            )
        return out
