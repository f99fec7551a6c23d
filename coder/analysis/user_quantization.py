"""Quantization the script already does with torch itself (`torch.ao.quantization.
quantize_dynamic(model, ...)`, eager `prepare` / `convert`, FX `prepare_fx` /
`convert_fx`): a fit or QAT inserted as well would quantize an int8 model again."""

from __future__ import annotations

from dataclasses import dataclass

from .index import Index

#: torch's quantization entry points that turn a float model into a (fake-)quantized one
_TORCH_PACKAGES = ("torch.ao.quantization.", "torch.quantization.")
_ENTRY_POINTS = frozenset(
    {
        "quantize_dynamic",
        "quantize",
        "quantize_qat",
        "prepare",
        "prepare_qat",
        "convert",
        "prepare_fx",
        "prepare_qat_fx",
        "convert_fx",
    }
)

#: those that make the model train fake-quantized
QAT_ENTRY_POINTS = frozenset({"prepare_qat", "prepare_qat_fx", "quantize_qat"})


@dataclass(frozen=True)
class UserQuantization:
    line: int
    call: str  # the callee as written, e.g. "torch.ao.quantization.quantize_dynamic"


def find_user_quantization(index: Index) -> UserQuantization | None:
    """The first call of one of torch's quantization entry points, if any."""
    for call in index.calls:
        name = index.qualified(call.func)
        if name.startswith(_TORCH_PACKAGES) and name.rsplit(".", 1)[-1] in _ENTRY_POINTS:
            return UserQuantization(index.source.line(call), index.source.code(call.func))
    return None
