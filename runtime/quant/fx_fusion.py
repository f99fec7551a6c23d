"""What FX preparation needs from the model: float ops hidden from fusion, the
optimizer contract check's error, and the BatchNorms folded into the conv before them."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from torch import nn

from .module_tree import _get_submodule, _hooks_suspended, _set_submodule, _shared_ids
from .qconfigs import _quiet

#: module types that take part in FX fusion patterns (hidden from it when kept float)
_FUSABLE_TYPES = frozenset(
    {
        nn.Linear,
        nn.Conv1d,
        nn.Conv2d,
        nn.Conv3d,
        nn.ConvTranspose1d,
        nn.ConvTranspose2d,
        nn.ConvTranspose3d,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.BatchNorm3d,
    }
)


class _FxContractError(RuntimeError):
    """FX preparation broke the parameter / name contract; use the eager path."""


def _branches_on_training(model: nn.Module) -> str | None:
    """The first module FX would trace through (not one of torch's leaf modules) whose
    forward reads `self.training`: traced in train mode for QAT, FX would keep only the
    training branch, and the int8 model would run it in eval too."""
    import inspect

    for name, module in model.named_modules():
        cls = type(module)
        if cls.__module__.startswith("torch."):
            continue
        try:
            source = inspect.getsource(cls.forward)
        except (OSError, TypeError):
            continue
        if "self.training" in source:
            return name or cls.__name__
    return None


@contextlib.contextmanager
def _hidden_from_fusion(modules: list[nn.Module]) -> Iterator[None]:
    """Swap the class of float-kept fusable modules for an alias FX patterns do not match."""
    swapped: list[tuple[nn.Module, type]] = []
    try:
        for module in modules:
            cls = type(module)
            if cls in _FUSABLE_TYPES:
                module.__class__ = _float_alias(cls)
                swapped.append((module, cls))
        yield
    finally:
        for module, cls in swapped:
            module.__class__ = cls


@functools.cache
def _float_alias(cls: type) -> type:
    # same __module__ so the FX tracer still treats it as a standard leaf module
    return type(
        cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    )


def _is_quantized(module: nn.Module) -> bool:
    from torch.ao.nn.quantized import Embedding, EmbeddingBag
    from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase, RNNCellBase
    from torch.ao.nn.quantized.modules.utils import WeightedQuantizedModule

    return isinstance(
        module, (WeightedQuantizedModule, Embedding, EmbeddingBag, RNNBase, RNNCellBase)
    )


_CONV_BATCH_NORM: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: nn.BatchNorm1d,
    nn.Conv2d: nn.BatchNorm2d,
    nn.Conv3d: nn.BatchNorm3d,
}


def _fold_batch_norms(model: nn.Module) -> list[str]:
    """Fold each BatchNorm whose only input is a conv's output (used nowhere else) into
    that conv, in `model` itself (eval mode): the conv at its name gets the folded
    weight and bias, the BN becomes an `nn.Identity` at its name. Found on an FX trace;
    nothing is folded when the model has no BatchNorm or does not trace. Returns the
    names of the folded BNs."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return []
    from torch.fx import symbolic_trace
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    try:
        with _quiet(), _hooks_suspended(model):
            graph = symbolic_trace(model).graph
    except Exception:  # tracing fails in many ways
        return []
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    shared = _shared_ids(model)
    folded: list[str] = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.users) != 1:
            continue
        user = next(iter(node.users))
        if user.op != "call_module" or tuple(user.args) != (node,) or user.kwargs:
            continue
        conv_name, bn_name = str(node.target), str(user.target)
        conv, bn = _get_submodule(model, conv_name), _get_submodule(model, bn_name)
        if (
            conv is None
            or bn is None
            or _CONV_BATCH_NORM.get(type(conv)) is not type(bn)
            or calls[conv_name] != 1
            or calls[bn_name] != 1
            or {id(conv), id(bn), id(conv.weight)} & shared
            or conv.training
            or bn.training
            or getattr(bn, "running_mean", None) is None
        ):
            continue
        _set_submodule(model, conv_name, fuse_conv_bn_eval(conv, bn))
        _set_submodule(model, bn_name, nn.Identity())
        folded.append(bn_name)
    return folded
