"""What the framework integrations share about a post-training result: the bare module of a
quantized model, and which metric names are better when lower."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..model import Model

#: metric names (substrings) that improve downwards; the coder's evaluation analysis keeps
#: the same list (coder/analysis/evaluation.py) for the metrics it reads in scripts
LOWER_IS_BETTER = ("loss", "error", "wer", "cer", "perplexity", "ppl", "distance", "mse", "mae")


def bare_module(model: Any) -> nn.Module:
    """The module inside our `Model` or INC's model wrapper (which is not a Module)."""
    inner = model
    if isinstance(model, Model) or (
        not isinstance(model, nn.Module) and isinstance(getattr(model, "model", None), nn.Module)
    ):
        inner = model.model
    if not isinstance(inner, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return inner
