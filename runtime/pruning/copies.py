"""Averaged copies of the pruned model: the moving average of its weights that many
training scripts keep beside it (timm's `ModelEma` / `ModelEmaV2` / `ModelEmaV3`,
YOLOv5's `ModelEMA`, torch's `AveragedModel`) and evaluate and save instead of it.

The copy's weights are averaged from the model's, so a weight the masks zero decays
towards zero in the copy but never reaches it (with a decay of 0.9999, it keeps 90 %
of its value after 1,000 steps). `AveragedCopy` multiplies the copy's weight of the
same name by the model's mask, so the averaged model is as sparse as the model.
Not part of INC 2.x: `CompressionManager.track_copy` is this runtime's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..state_size import count_zeros
from .masking import multiply_masks

__all__ = ["AveragedCopies", "AveragedCopy", "plain_name"]

#: what wrappers add to a parameter's name: DDP / DataParallel / `AveragedModel`
#: (`module.`), `torch.compile` (`_orig_mod.`) and this runtime's `Model` (`_model.`),
#: when the copy was made of the wrapped model
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "_model.")


def plain_name(name: str) -> str:
    """`name` without the wrappers' prefixes."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix) :], True
    return name


def _parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    return {plain_name(n): p for n, p in module.named_parameters(remove_duplicate=False)}


def masks_by_name(
    model: nn.Module, params: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The masks applied each step, by the plain name of their weight in `model`."""
    named = {id(p): plain_name(n) for n, p in model.named_parameters(remove_duplicate=False)}
    return {named[id(p)]: m for p, m in zip(params, masks) if id(p) in named}


def _sources(holder: Any) -> list[tuple[str | None, Any]]:
    """Where a copy's weights may be, as (attribute of `holder` or None, object):
    `holder` itself, then its attributes that are modules (YOLOv5's `ema.ema`, timm's
    `ema.module`) or lists of tensors (diffusers' `EMAModel.shadow_params`, torch_ema's)."""
    found: list[tuple[str | None, Any]] = [(None, holder)]
    attributes = (
        holder._modules if isinstance(holder, nn.Module) else getattr(holder, "__dict__", {})
    )
    for name, value in attributes.items():
        if isinstance(value, nn.Module) or _is_tensor_list(value):
            found.append((name, value))
    return found


def _is_tensor_list(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, torch.Tensor) for v in value)
    )


def _weights(source: Any, model_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """A module's parameters by plain name; a list of tensors made from
    `model.parameters()` by the names of the model's parameters, in that order."""
    if isinstance(source, nn.Module):
        return _parameters(source)
    if _is_tensor_list(source) and len(source) == len(model_names):
        return dict(zip(model_names, source))
    return {}


class AveragedCopy:
    """One copy the masks also apply to. `holder`: the module, the object holding it, or
    the list of averaged tensors (in the order of `model.parameters()`)."""

    def __init__(self, holder: Any, model: nn.Module, names: Iterable[str]) -> None:
        self.holder = holder
        self.model = model
        self._attribute: str | None = None
        self._source: Any = None
        self._resolve(set(names))
        self._by_name: Mapping[str, torch.Tensor] = {}
        self._params: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []

    def _resolve(self, names: set[str]) -> dict[str, torch.Tensor]:
        """The source holding the most of the masked weights' names (shapes are checked
        in `bind`); ValueError when none holds any."""
        model_names = [plain_name(n) for n, _ in self.model.named_parameters()]
        best: tuple[int, str | None, Any, dict[str, torch.Tensor]] = (0, None, None, {})
        for attribute, source in _sources(self.holder):
            weights = _weights(source, model_names)
            count = len(names & weights.keys())
            if count > best[0]:
                best = (count, attribute, source, weights)
        if not best[0]:
            raise ValueError(
                f"track_copy: {type(self.holder).__name__} holds no copy of the pruned "
                f"weights ({', '.join(sorted(names)[:3]) or 'none yet'}): give the copy of "
                "the model itself (for example ema.module or ema.ema)"
            )
        _, self._attribute, self._source, weights = best
        return weights

    def bind(self, masks: Mapping[str, torch.Tensor]) -> None:
        """The copy's weights for the model's `masks` (by plain parameter name), each mask
        moved to its weight's device and dtype."""
        self._by_name = masks
        if not masks:
            self._params, self._masks = [], []
            return
        # found again each time: the script may have replaced the copy since
        # (`ema.ema = deepcopy(model)`, diffusers' `ema.to(device)` makes a new list)
        found = self._resolve(set(masks))
        params, moved = [], []
        for name, mask in masks.items():
            param = found.get(name)
            if param is None:
                continue
            if param.shape != mask.shape:
                raise ValueError(
                    f"track_copy: the copy's {name} has shape {tuple(param.shape)}, the "
                    f"model's {tuple(mask.shape)}: it is not a copy of the model"
                )
            params.append(param)
            moved.append(mask.to(device=param.device, dtype=param.dtype))
        self._params, self._masks = params, moved

    def apply(self) -> None:
        if not self._params:
            return
        current = (
            self.holder if self._attribute is None else getattr(self.holder, self._attribute, None)
        )
        if current is not self._source:  # replaced since `bind`
            self.bind(self._by_name)
        try:
            multiply_masks(self._params, self._masks)
        except RuntimeError:  # the copy moved (`ema.to(device)`) or changed dtype
            self._masks = [
                m.to(device=p.device, dtype=p.dtype) for p, m in zip(self._params, self._masks)
            ]
            multiply_masks(self._params, self._masks, per_layer=True)

    def sparsity(self) -> float:
        """Zeros over the masked weights of the copy."""
        total = sum(p.numel() for p in self._params)
        return sum(count_zeros(p) for p in self._params) / total if total else 0.0


class AveragedCopies:
    """The copies a `PruningCompressor` keeps sparse."""

    def __init__(self) -> None:
        self.copies: list[AveragedCopy] = []

    def __bool__(self) -> bool:
        return bool(self.copies)

    def track(
        self,
        holder: Any,
        model: nn.Module,
        params: Sequence[torch.Tensor],
        masks: Sequence[torch.Tensor],
        prunable: Sequence[torch.Tensor],
    ) -> None:
        """Add `holder`'s copy (once) and apply the current masks to it. `prunable`: the
        weights the pruners will mask, to find the copy before any mask exists."""
        if any(c.holder is holder for c in self.copies):
            return
        by_name = masks_by_name(model, params, masks)
        names = by_name or masks_by_name(model, prunable, prunable)
        if not names:
            return  # no layer is pruned (logged when the pruners selected none)
        copy = AveragedCopy(holder, model, names)
        copy.bind(by_name)
        copy.apply()
        self.copies.append(copy)

    def bind(
        self, model: nn.Module, params: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
    ) -> None:
        by_name = masks_by_name(model, params, masks)
        for copy in self.copies:
            copy.model = model
            copy.bind(by_name)

    def apply(self) -> None:
        for copy in self.copies:
            copy.apply()

    def sparsity(self) -> list[float]:
        return [round(copy.sparsity(), 4) for copy in self.copies]
