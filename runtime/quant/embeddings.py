"""Weight-only int8 embeddings (a float scale and offset per row) for static and dynamic PTQ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.ao.quantization import QConfig

from . import modules as qm
from .backend import QuantSpec
from .module_tree import _get_submodule, _set_submodule
from .size_hints import _float_zeros

#: quantized weight-only (int8 rows with a float scale and offset each) by static and dynamic PTQ
_EMBEDDING_TYPES = frozenset({nn.Embedding, nn.EmbeddingBag})


# -- embeddings ----------------------------------------------------------------
def _embedding_qconfigs(model: nn.Module, spec: QuantSpec, shared: set[int]) -> dict[str, QConfig]:
    """torch.ao's weight-only qconfig for the embeddings that PTQ quantizes, as INC does
    (a quarter of the fp32 size; the lookup returns float, so no activation is quantized).
    Kept float: tied or shared ones, `max_norm` (the int8 lookup ignores it), EmbeddingBag
    in a mode other than sum, and those the spec's rules keep float."""
    from torch.ao.quantization import float_qparams_weight_only_qconfig

    qconfigs: dict[str, QConfig] = {}
    for name, module in model.named_modules():
        if type(module) not in _EMBEDDING_TYPES or module.max_norm is not None:
            continue
        if (
            id(module) in shared
            or id(module.weight) in shared
            or module.weight.dtype != torch.float32
        ):
            continue
        if isinstance(module, nn.EmbeddingBag) and module.mode != "sum":
            continue
        if spec.plan_for(name, module) is not None:
            qconfigs[name] = float_qparams_weight_only_qconfig
    return qconfigs


def _quantize_embeddings(model: nn.Module, qconfigs: Mapping[str, QConfig]) -> int:
    """Swap the embeddings at `qconfigs`' names for weight-only int8 ones; how many."""
    from torch.ao.nn.quantized.modules.embedding_ops import EmbeddingPackedParams

    from ..state_size import SIZE_HINT_ATTR, SizeHint

    swapped = 0
    for name, qconfig in qconfigs.items():
        module = _get_submodule(model, name)
        if module is None or type(module) not in _EMBEDDING_TYPES:  # FX keeps leaf names
            continue
        rows, numel, zeros = (
            module.num_embeddings,
            module.weight.numel(),
            _float_zeros(module.weight),
        )
        quantized = qm.quantize_embedding(module, qconfig)
        _set_submodule(model, name, quantized)
        swapped += 1
        holder: Any = quantized._packed_params
        if type(holder)._save_to_state_dict is EmbeddingPackedParams._save_to_state_dict:
            # what its state dict unpacks: uint8 rows, float32 scale and offset a row
            entries = (("dtype", None, None), ("_packed_weight", numel, rows))
            hint = SizeHint(
                holder._packed_weight, entries, "_packed_weight", 8, (rows, numel, zeros)
            )
            object.__setattr__(holder, SIZE_HINT_ATTR, hint)
    return swapped
