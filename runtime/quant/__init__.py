"""Quantization: the backend interface, its torch.ao implementation and the QAT compressor.

Callers use `get_backend()` (a `QuantBackend`) and `QuantSpec`; nothing
outside this package imports torch.ao.
"""

from __future__ import annotations

import copy
import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import nn

from .backend import (
    DYNAMIC,
    QAT,
    STATIC,
    OpRule,
    PreparedModel,
    QuantBackend,
    QuantSpec,
    TensorScheme,
    get_recipe,
    normalize_approach,
)
from .qat import QATCompressor


@functools.cache
def get_backend() -> QuantBackend:
    """The process-wide quantization backend (torch.ao on the x86 / fbgemm engine)."""
    from .torch_ao import TorchAOBackend

    return TorchAOBackend()


def rebuild_quantized(
    fp32_model: nn.Module,
    recipe: Mapping[str, Any],
    state_dict: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The int8 structure described by `recipe` (a QAT or PTQ `q_config`), built on a
    copy of `fp32_model`, so that `load_state_dict` of the saved int8 state dict works.

    `fp32_model` is not modified. Scales and int8 weights are placeholders until the
    state dict is loaded; pass `state_dict` to have it loaded here (see
    `load_quantized_state_dict`: a plain `dict` copy of a state dict works too).
    """
    model = get_backend().rebuild(fp32_model, recipe)
    if state_dict is not None:
        load_quantized_state_dict(model, state_dict)
    return model


def int8_from_fake_quant(
    fp32_model: nn.Module, recipe: Mapping[str, Any], state_dict: Mapping[str, Any]
) -> nn.Module:
    """The int8 model that QAT would have converted from a checkpoint of its fake-quant
    model (`state_dict`, saved while QAT trained): a copy of `fp32_model` prepared by
    `recipe` (`int8_device.attach_fake_quant_recipe`), loaded, converted."""
    backend = get_backend()
    prepared = backend.prepare_qat(copy.deepcopy(fp32_model), QuantSpec.of_recipe(recipe))
    prepared.model.load_state_dict(state_dict)
    return backend.convert(prepared, inplace=True)


def load_quantized_state_dict(
    model: nn.Module, state_dict: Mapping[str, Any], strict: bool = True
) -> Any:
    """`model.load_state_dict(state_dict)` that also accepts a state dict without torch's
    `_metadata` (lost by `dict(state_dict)` or a re-keyed copy).

    torch's quantized modules read their layout version from that metadata and, when
    it is missing, take the state dict for their legacy layout (`KeyError: '...weight'`).
    The versions are those of `model`'s own modules, which have the same structure.
    """
    if getattr(state_dict, "_metadata", None) is None:
        with_metadata: Any = OrderedDict(state_dict)
        with_metadata._metadata = getattr(model.state_dict(), "_metadata", None)
        state_dict = with_metadata
    return model.load_state_dict(state_dict, strict=strict)


__all__ = [
    "DYNAMIC",
    "QAT",
    "STATIC",
    "OpRule",
    "PreparedModel",
    "QATCompressor",
    "QuantBackend",
    "QuantSpec",
    "TensorScheme",
    "get_backend",
    "get_recipe",
    "int8_from_fake_quant",
    "load_quantized_state_dict",
    "normalize_approach",
    "rebuild_quantized",
]
