"""Distiller-style recipe files: pruners, regularizers, quantizers, LR schedulers and
distillers (the *what*) with policies over epochs (the *when*), read from yaml
(`safe_load`) or a dict, run through `prepare_compression(model, RecipeConfig(...))`.
See `schema.py` for the format and `compressor.py` for how the epochs run."""

from .compressor import RecipeCompressor
from .config import RecipeConfig, is_recipe_mapping
from .schema import CLASSES, Recipe, RecipeError, parse_recipe, read_recipe

__all__ = [
    "CLASSES",
    "Recipe",
    "RecipeCompressor",
    "RecipeConfig",
    "RecipeError",
    "is_recipe_mapping",
    "parse_recipe",
    "read_recipe",
]
