"""The masks a recipe keeps: one boolean keep mask per parameter, applied after every
optimizer step for the rest of the run (masks only grow, whichever pruner or
regularizer threshold made them). With `shrink: true` the biases and batch norms
after fully pruned rows are masked too (`set_followers`, see `shrinking.py`)."""

from __future__ import annotations

import torch
from torch import nn

from ..pruning.masking import multiply_masks

__all__ = ["MaskStore"]


class MaskStore:
    def __init__(self) -> None:
        self.params: dict[str, nn.Parameter] = {}
        self.keeps: dict[str, torch.Tensor] = {}
        #: bumped at every mask change, so followers know when to be recomputed
        self.version = 0
        self._followers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._released = False
        self._apply_params: list[torch.Tensor] = []
        self._apply_masks: list[torch.Tensor] = []

    def keep(self, name: str, param: torch.Tensor) -> torch.Tensor:
        found = self.keeps.get(name)
        if found is None:
            return torch.ones(param.shape, dtype=torch.bool, device=param.device)
        return found

    def update(self, name: str, param: nn.Parameter, keep: torch.Tensor) -> None:
        """AND `keep` into the parameter's mask and zero the pruned weights now."""
        keep = keep.to(param.device) & self.keep(name, param)
        self.params[name] = param
        self.keeps[name] = keep
        with torch.no_grad():
            param.mul_(keep)
        self.version += 1
        self._refresh()

    def set_followers(self, params: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
        """1-D parameters (biases, batch norm affines) masked with the weights from now on."""
        self._followers = list(zip(params, masks))
        self._refresh()

    def release(self) -> None:
        """Stop masking: the weights left the model (it was shrunk); sparsity stays reported."""
        self._released = True
        self._refresh()

    def _refresh(self) -> None:
        if self._released:
            self._apply_params, self._apply_masks = [], []
            return
        pairs = [(self.params[n], self.keeps[n]) for n in self.keeps] + self._followers
        self._apply_params = [p for p, _ in pairs]
        self._apply_masks = [m.to(dtype=p.dtype, device=p.device) for p, m in pairs]

    def apply(self) -> None:
        """Every masked weight times its mask (after each optimizer step)."""
        if not self._apply_params:
            return
        try:
            multiply_masks(self._apply_params, self._apply_masks)
        except RuntimeError:  # a weight moved (model.to(device)) or changed dtype
            self._refresh()
            multiply_masks(self._apply_params, self._apply_masks, per_layer=True)

    def sparsity(self, name: str) -> float:
        keep = self.keeps.get(name)
        return 0.0 if keep is None else 1.0 - float(keep.float().mean())
