"""Shared by the hand-written INC 2.x scripts in this folder: which library to
import, synthetic data, and what to measure on the model at the end.

The scripts themselves are plain INC 2.x training scripts (the loop of spec 1.7);
only their imports depend on the target:

    python prune.py --target inc        # Intel Neural Compressor 2.x
    python prune.py --target runtime    # neural_coder.runtime (the default)

The target may also come from the environment variable NEURAL_CODER_TARGET.
Each script prints, as its last line on stdout, one JSON object with what it
measured (see ``emit``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import torch
from torch import nn

TARGETS = ("inc", "runtime")


def target_from_argv(description: str) -> str:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default=os.environ.get("NEURAL_CODER_TARGET", "runtime"),
        help="inc: import neural_compressor; runtime: import neural_coder.runtime",
    )
    target = parser.parse_args().target
    if target not in TARGETS:
        parser.error(f"NEURAL_CODER_TARGET must be one of {TARGETS}, not {target!r}")
    return target


def library_version(target: str) -> str:
    if target == "inc":
        import neural_compressor

        return str(neural_compressor.__version__)
    try:
        from importlib.metadata import version

        return version("neural-coder")
    except Exception:  # an uninstalled checkout on sys.path
        return "unknown"


def seed(value: int = 0) -> None:
    torch.manual_seed(value)
    torch.set_num_threads(1)


def classification_data(
    n: int, shape: tuple[int, ...], classes: int, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Synthetic, learnable: labels come from a fixed random linear map of the inputs."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(n, *shape, generator=g)
    w = torch.randn(x[0].numel(), classes, generator=g)
    y = (x.flatten(1) @ w).argmax(dim=1)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]


def type_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def inner_module(model: Any) -> nn.Module:
    """The torch module inside an INC/runtime wrapper (or the module itself)."""
    seen = 0
    while seen < 5 and isinstance(getattr(model, "_model", None), nn.Module):
        model = model._model
        seen += 1
    return model


def dense_weight(module: nn.Module) -> torch.Tensor | None:
    """The weight as a float tensor: a float parameter, or a quantized module's weight()."""
    weight = getattr(module, "weight", None)
    if callable(weight) and not isinstance(weight, torch.Tensor):
        try:
            weight = weight()
        except Exception:
            return None
    if not isinstance(weight, torch.Tensor):
        return None
    if weight.is_quantized:
        weight = weight.dequantize()
    return weight.detach().float()


def is_int8_module(module: nn.Module) -> bool:
    """True for a module whose weight is stored as a quantized (int8) tensor."""
    weight = getattr(module, "weight", None)
    if callable(weight) and not isinstance(weight, torch.Tensor):
        try:
            weight = weight()
        except Exception:
            return False
    return isinstance(weight, torch.Tensor) and weight.is_quantized


def int8_modules(model: nn.Module) -> dict[str, str]:
    return {name: type_name(m) for name, m in model.named_modules() if is_int8_module(m)}


def weight_layers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Name -> float weight for every module holding a 2-D+ weight (float or int8).

    Covers float, QAT-prepared (fake-quant) and converted (int8) layers alike; a
    fused float module (``fc1`` = Sequential(Linear, ReLU)) contributes its
    ``fc1.0``; ``_short`` maps both back to ``fc1``.
    """
    layers: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        weight = dense_weight(module) if name else None
        if weight is not None and weight.dim() >= 2:
            layers[name] = weight
    return layers


def sparsity(weights: dict[str, torch.Tensor]) -> float | None:
    total = sum(w.numel() for w in weights.values())
    if total == 0:
        return None
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    return zeros / total


def block_aligned(weight: torch.Tensor, rows: int, cols: int) -> float | None:
    """Fraction of the zeros of a 2-D weight [out, in, ...] that lie in all-zero
    blocks of `rows` output channels x `cols` input channels."""
    w = weight.flatten(1) if weight.dim() > 2 else weight
    if w.shape[0] % rows or w.shape[1] % cols:
        return None
    zeros = int((w == 0).sum())
    if zeros == 0:
        return None
    blocks = (w == 0).reshape(w.shape[0] // rows, rows, w.shape[1] // cols, cols)
    full = blocks.all(dim=3).all(dim=1)
    return int(full.sum()) * rows * cols / zeros


def pruning_report(model: nn.Module, pruned: list[str], head: str) -> dict[str, Any]:
    layers = weight_layers(model)
    chosen = {k: v for k, v in layers.items() if _short(k) in pruned}
    return {
        "layers": {k: round(float((v == 0).float().mean()), 6) for k, v in chosen.items()},
        "pruned_layers_found": sorted(_short(k) for k in chosen),
        "sparsity": sparsity(chosen),
        "head_sparsity": sparsity({k: v for k, v in layers.items() if _short(k) == head}),
        # which block orientation holds the zeros: 4 output rows x 1 input column, or 1 x 4
        "zeros_in_4x1_blocks": _min(block_aligned(v, 4, 1) for v in chosen.values()),
        "zeros_in_1x4_blocks": _min(block_aligned(v, 1, 4) for v in chosen.values()),
        "block_elements": 4,
        "pruned_elements_total": sum(v.numel() for v in chosen.values()),
    }


def _short(name: str) -> str:
    """fc1.0 / fc1._orig / fc1 -> fc1; keeps the first path component that names a layer."""
    parts = [p for p in name.split(".") if not p.isdigit()]
    return parts[0] if parts else name


def _min(values: Any) -> float | None:
    values = [v for v in values if v is not None]
    return round(min(values), 6) if values else None


def loss_return_kind(value: Any) -> str:
    """What callbacks.on_after_compute_loss returned, in a word."""
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return "tensor"
    if isinstance(value, list):
        return f"list[{len(value)}]"
    return type_name(value)


def emit(result: dict[str, Any]) -> None:
    """The last line on stdout: one JSON object."""
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True, default=str), flush=True)
