"""Fake quantization in fp32 under autocast.

Under autocast (bf16 / fp16 mixed precision, nanoGPT's and llm.c's training) the
activations reach the fake-quant modules in half precision, which torch's fake-quant
kernels reject ("expected scalar type Float"). Each fake-quant module therefore computes
in fp32 and hands back its input's dtype.

A torch fake-quant class gets this from a subclass (`module.__class__` swapped in place),
not from forward hooks: torch.compile traces a hooked fake-quant module otherwise than a
plain one, and the fused per-channel kernel then fails on the first compiled step. The
subclasses are named after their base (`_InFp32_FusedMovingAvgObsFakeQuantize`) and made
on first use, by this module's `__getattr__` too, so a pickled prepared model
(`torch.save(model)`) loads in a process that has not made them yet. A fake-quant class
of another package keeps the hooks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["fake_quant_in_fp32"]

_PREFIX = "_InFp32_"
_IN_DTYPE = "_neural_coder_in_dtype"


def _forward_in_fp32(base: type) -> Any:
    """`base`'s forward in fp32, giving back the input's dtype."""

    def forward(self: nn.Module, X: torch.Tensor) -> torch.Tensor:
        if X.is_floating_point() and X.dtype != torch.float32:
            return base.forward(self, X.float()).to(X.dtype)
        return base.forward(self, X)

    return forward


def _torch_fake_quant_class(name: str) -> type | None:
    from torch.ao.quantization import fake_quantize

    cls = getattr(fake_quantize, name, None)
    base = fake_quantize.FakeQuantizeBase
    return cls if isinstance(cls, type) and issubclass(cls, base) and cls is not base else None


def _in_fp32_class(base: type) -> type:
    name = _PREFIX + base.__name__
    made = globals().get(name)
    if made is None:
        namespace = {
            "forward": _forward_in_fp32(base),
            "__module__": __name__,
            "__qualname__": name,
        }
        made = type(name, (base,), namespace)
        globals()[name] = made
    return made


def __getattr__(name: str) -> Any:
    base = _torch_fake_quant_class(name[len(_PREFIX) :]) if name.startswith(_PREFIX) else None
    if base is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _in_fp32_class(base)


def fake_quant_in_fp32(model: nn.Module) -> int:
    """Every fake-quant module of `model` computes in fp32 under autocast (see the
    module's docstring). Returns how many."""
    from torch.ao.quantization.fake_quantize import FakeQuantizeBase

    count = 0
    for module in model.modules():
        if not isinstance(module, FakeQuantizeBase) or type(module).__name__.startswith(_PREFIX):
            continue
        cls = type(module)
        if _torch_fake_quant_class(cls.__name__) is cls:
            module.__class__ = _in_fp32_class(cls)
        else:
            module.register_forward_pre_hook(_to_fp32)
            module.register_forward_hook(_back_to_input_dtype)
        count += 1
    return count


def _to_fp32(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    x = args[0] if args else None
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float32:
        object.__setattr__(module, _IN_DTYPE, x.dtype)
        return (x.float(), *args[1:])
    object.__setattr__(module, _IN_DTYPE, None)
    return None


def _back_to_input_dtype(module: nn.Module, args: Any, output: Any) -> Any:
    dtype = getattr(module, _IN_DTYPE, None)
    if dtype is not None and isinstance(output, torch.Tensor):
        return output.to(dtype)
    return None
