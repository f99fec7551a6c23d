"""`RecipeConfig`: a recipe as one of `prepare_compression`'s configs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .schema import Recipe, parse_recipe, read_recipe

__all__ = ["RecipeConfig", "is_recipe_mapping"]


def is_recipe_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and ("policies" in value or "version" in value)


class RecipeConfig:
    """A Distiller-style schedule for `prepare_compression(model, RecipeConfig(...))`.

    `recipe`: a yaml path, a mapping (what the yaml holds) or a parsed `Recipe`;
    read and checked at once. `teacher_model`: the teacher of a `distillers`
    policy. `optimizer`: the training optimizer the `lr_schedulers` drive (when
    None, the first optimizer that steps the model's parameters). `epochs`: the
    run's epoch count, when known: policies without `ending_epoch` end there, and
    policies past it are reported as never reached.
    """

    def __init__(
        self,
        recipe: str | os.PathLike[str] | Mapping[str, Any] | Recipe,
        teacher_model: Any = None,
        optimizer: Any = None,
        epochs: int | None = None,
    ) -> None:
        if isinstance(recipe, Recipe):
            self.recipe = recipe
        elif isinstance(recipe, Mapping):
            self.recipe = parse_recipe(recipe)
        else:
            self.recipe = read_recipe(recipe)
        self.teacher_model = teacher_model
        self.optimizer = optimizer
        self.epochs = int(epochs) if epochs is not None else None

    def __repr__(self) -> str:
        return f"RecipeConfig({self.recipe.source!r}, {len(self.recipe.policies)} policies)"
