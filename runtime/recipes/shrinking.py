"""`shrink: true` on a recipe's structure pruner: the recipe's side of shrinking.

The same machinery as `WeightPruningConfig(shrink=True)` (`pruning/structured.py`):
the first forward's inputs are kept as example inputs; once they exist, the bias of
every pruned layer and the batch norm that reads only it are masked with the rows
its weight mask clears (after every optimizer step, with the weights, in the
`MaskStore`), so the masked model computes what the shrunk one will. At
`on_train_end` `shrink_model` removes the all-zero channels in place, whichever
pruner or regularizer threshold zeroed them, and the parameter count and latency,
before and after, go into the run summary (`shrink_*` keys).

A filter of one side of a residual addition stays unless every layer writing that
stream prunes it (recipe pruners rank each layer alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..pruning.structured import StructuredShrink
from .masks import MaskStore

__all__ = ["RecipeShrink"]


def _owners(model: nn.Module, params: Iterable[tuple[str, nn.Parameter]]) -> dict[str, str]:
    """Parameter name -> the name of the module whose `weight` it is."""
    modules = dict(model.named_modules())
    out: dict[str, str] = {}
    for name, param in params:
        module_name = name.rsplit(".", 1)[0] if name.endswith(".weight") else None
        module = modules.get(module_name) if module_name is not None else None
        if module is not None and getattr(module, "weight", None) is param:
            out[name] = module_name
    return out


class RecipeShrink:
    """Follower masks while training and the final shrink, for a recipe's masks."""

    def __init__(
        self, model: nn.Module, store: MaskStore, weights: Iterable[tuple[str, nn.Parameter]]
    ) -> None:
        self.store = store
        self.structured = StructuredShrink(model)
        self._owner = _owners(model, weights)
        modules = dict(model.named_modules())
        self._layers = {m: modules[m] for m in self._owner.values()}
        self._version = -1
        self.summary: dict[str, Any] = {}

    def refresh(self, model: nn.Module) -> None:
        """Recompute the follower masks when the weight masks changed, or when the
        followers can first be found (after the first forward)."""
        if self.structured.example_inputs is None:
            return
        if self._version == self.store.version and not self.structured.followers_pending():
            return
        masks: dict[str, torch.Tensor] = {
            self._owner[n]: keep for n, keep in self.store.keeps.items() if n in self._owner
        }
        params, follower_masks = self.structured.row_follower_masks(model, self._layers, masks)
        self.store.set_followers(params, follower_masks)
        self._version = self.store.version

    def shrink(self, model: nn.Module, example_inputs: Any = None) -> dict[str, Any]:
        """Remove the pruned channels of `model` in place; the summary keys."""
        self.refresh(model)
        self.store.apply()  # the followers of masks made after the last step
        self.summary = self.structured.shrink(model, example_inputs)
        if self.structured.report is not None:
            self.store.release()
        return self.summary
