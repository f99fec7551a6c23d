"""Groups of weights that regularizers shrink and structure pruners remove together.

For a weight `[out, in, *kernel]` (a Linear weight is `[out, in]`):

| group                      | one group is                              |
|----------------------------|-------------------------------------------|
| `3D`, `Rows`, `Filters`    | one output filter / row: `W[o]`           |
| `Channels`, `Cols`         | one input channel / column: `W[:, i]`     |
| `2D`                       | one kernel: `W[o, i]` (needs a kernel)    |
| `4D`                       | the whole tensor                          |
"""

from __future__ import annotations

import torch

from .schema import RecipeError

__all__ = ["check_group", "expand_groups", "group_matrix"]

_ROWS = ("3D", "Rows", "Filters")
_COLS = ("Channels", "Cols")


def check_group(kind: str, shape: torch.Size | tuple[int, ...], name: str) -> None:
    if len(shape) < 2:
        raise RecipeError(f"{name} has {len(shape)} dimension(s): it has no {kind} groups")
    if kind == "2D" and len(shape) < 3:
        raise RecipeError(
            f"{name} has no kernel dimensions (shape {tuple(shape)}): use Rows or Cols for it"
        )


def group_matrix(weight: torch.Tensor, kind: str) -> torch.Tensor:
    """`[groups, elements per group]`: one row per group."""
    if kind in _ROWS:
        return weight.reshape(weight.shape[0], -1)
    if kind in _COLS:
        return weight.transpose(0, 1).reshape(weight.shape[1], -1)
    if kind == "2D":
        return weight.reshape(weight.shape[0] * weight.shape[1], -1)
    return weight.reshape(1, -1)


def expand_groups(
    per_group: torch.Tensor, shape: torch.Size | tuple[int, ...], kind: str
) -> torch.Tensor:
    """A weight-shaped tensor holding each group's value at its elements."""
    rest = (1,) * (len(shape) - 2)
    if kind in _ROWS:
        view = per_group.view(shape[0], 1, *rest)
    elif kind in _COLS:
        view = per_group.view(1, shape[1], *rest)
    elif kind == "2D":
        view = per_group.view(shape[0], shape[1], *rest)
    else:
        view = per_group.view(*(1,) * len(shape))
    return view.expand(*shape)
