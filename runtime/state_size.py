"""About the bytes `torch.save(model.state_dict())` writes, measured without serializing:
the storages of the state dict plus the archive's overhead, and the `SizeHint`s a
quantization backend leaves on packed int8 weights so they need not be unpacked."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .int8_device import RECIPE_ATTRS, records_recipe
from .model import Model

#: what `torch.save` writes besides the tensor data: zip records with 64-byte alignment,
#: the pickled keys and rebuild calls, and the state dict's `_metadata` (a version
#: entry per module, keyed by the module's name). Fitted by least squares on the relative
#: error over 40 state dicts of 3 KB to 2.4 MB: small CNNs and BERTs (float, static and
#: dynamic int8, per-channel and per-tensor, FX and eager), int8 embeddings, embeddings +
#: LSTM / GRU (dynamic), tied embeddings, stacks of 1 to 12 Linear / LayerNorm layers
#: (float and dynamic int8): within 1.5 % of the serialized size on each, within 0.4 % on
#: those over 100 KB (tests/runtime/test_summary_walk.py and test_ptq_size.py check it)
_ARCHIVE_BYTES = 1208
_PER_STORAGE_BYTES = 249
_PER_KEY_CHAR_BYTES = 1
_PER_MODULE_NAME_CHAR_BYTES = 1.8  # the name, and its version entry's share
_PER_QTENSOR_BYTES = -59  # an offset: a packed weight's dtype entry comes with it
_PER_OTHER_VALUE_BYTES = 92

#: attribute a quantization backend sets on a module holding packed int8 weights
#: (a `LinearPackedParams`, a quantized conv) to describe the tensors its state dict
#: would unpack: unpacking fbgemm weights costs about as much as packing them
SIZE_HINT_ATTR = "_neural_coder_size_hint"


@dataclass(frozen=True)
class SizeHint:
    """What `module._save_to_state_dict` adds for packed weights, without unpacking them.

    `entries`: (key, nbytes, channels): nbytes None for a non-tensor value; channels
    None for a float tensor, 0 for a per-tensor int8 tensor, C for a per-channel one
    (whose C scales and C zero points, `qparam_bytes` a channel, are saved as tensors:
    float64 and int64, or float32 and float32 for embeddings). `weight`: (rows, elements,
    zeros) of the int8 weight, for `storage_facts`; the zeros are those of the float
    weight it was quantized from (pruned weights: quantization keeps them zero), counted
    by the backend. Valid while `getattr(module, packed_attr) is packed` (loading a state
    dict repacks).
    """

    packed: Any
    entries: tuple[tuple[str, int | None, int | None], ...]
    packed_attr: str = "_packed_params"
    qparam_bytes: int = 16
    weight: tuple[int, int, int] | None = None

    def describes(self, module: nn.Module) -> bool:
        return getattr(module, self.packed_attr, None) is self.packed


def weight_facts(module: nn.Module) -> tuple[int, int, int] | None:
    """(rows, elements, zeros) of a quantized module's int8 weight where the backend
    described it (on the module or on its `_packed_params` holder), else None."""
    for holder in (module, module.__dict__.get("_modules", {}).get("_packed_params")):
        hint = getattr(holder, "__dict__", {}).get(SIZE_HINT_ATTR)
        if isinstance(hint, SizeHint) and hint.weight is not None and hint.describes(holder):
            return hint.weight
    return None


def count_zeros(tensor: torch.Tensor) -> int:
    """How many elements of `tensor` are zero (a quantized one: after dequantizing).
    One `count_nonzero` pass, which allocates nothing: a quicker-looking
    `abs().amin() > 0` check first costs a copy of the weight, and on weights a fit has
    just made (folded convolutions) that copy's fresh pages cost 1.3-4x the count."""
    values = tensor.detach()
    if values.is_quantized:
        values = values.dequantize()
    return values.numel() - int(torch.count_nonzero(values))


class _SizeCounter:
    """Sums the bytes of each storage once (torch.save writes a shared storage once)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        # storages stay referenced while counting: a freed one (a module's unpacked
        # weight) could hand its address to the next and be taken for a shared one
        self.alive: list[Any] = []
        self.size = _ARCHIVE_BYTES
        #: characters of the module names in the state dict's `_metadata`
        self.module_chars = 0

    def add(self, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            self.add_tensor(value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                self.add(item)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self.size += _PER_KEY_CHAR_BYTES * len(str(key))
                self.add(item)
        elif isinstance(value, torch._C.ScriptObject):
            # packed weights of a dynamic RNN (`CellParamsBase` holding linear packed
            # params): pickled through `__getstate__`, which unpacks their tensors
            self.size += _PER_OTHER_VALUE_BYTES
            try:
                state = value.__getstate__()
            except (AttributeError, RuntimeError):  # a class without one: not picklable
                return
            self.add(state)
        else:
            self.size += _PER_OTHER_VALUE_BYTES

    def total(self) -> int:
        return self.size + round(_PER_MODULE_NAME_CHAR_BYTES * self.module_chars)

    def add_metadata(self, state: Any) -> None:
        """The `_metadata` a state dict made by `nn.Module.state_dict` carries."""
        metadata = getattr(state, "_metadata", None)
        if isinstance(metadata, Mapping):
            self.module_chars += sum(len(str(k)) for k in metadata)
            for local in metadata.values():
                for attr in RECIPE_ATTRS if isinstance(local, Mapping) else ():
                    if attr in local:
                        self.add_recipe(local[attr])

    def add_recipe(self, recipe: Any) -> None:
        """An int8 model's recipe, which its state dict carries in its metadata."""
        self.size += len(pickle.dumps(recipe, protocol=2))

    def add_tensor(self, tensor: torch.Tensor) -> None:
        if tensor.is_quantized:
            self.size += _PER_QTENSOR_BYTES
            if tensor.qscheme() in (
                torch.per_channel_affine,
                torch.per_channel_affine_float_qparams,
            ):
                self.add_tensor(tensor.q_per_channel_scales())
                self.add_tensor(tensor.q_per_channel_zero_points())
        try:
            storage: Any = tensor.untyped_storage()
            key, nbytes = storage._cdata, storage.nbytes()
        except (RuntimeError, NotImplementedError, AttributeError):  # tensor subclasses
            storage, key, nbytes = tensor, id(tensor), tensor.numel() * tensor.element_size()
        if key not in self.seen:
            self.seen.add(key)
            self.alive.append(storage)
            self.size += nbytes + _PER_STORAGE_BYTES

    def add_hint(self, prefix: str, hint: SizeHint) -> None:
        for key, nbytes, channels in hint.entries:
            self.size += _PER_KEY_CHAR_BYTES * (len(prefix) + len(key))
            if nbytes is None:
                self.size += _PER_OTHER_VALUE_BYTES
                continue
            self.size += nbytes + _PER_STORAGE_BYTES
            if channels is not None:
                self.size += _PER_QTENSOR_BYTES
                if channels:  # the per-channel scales and zero points
                    self.size += hint.qparam_bytes * channels + 2 * _PER_STORAGE_BYTES

    def add_module(self, prefix: str, module: nn.Module) -> None:
        """What `module._save_to_state_dict` would add (not its children)."""
        own, extra_state = _saving(type(module))
        if own:
            hint = None
            if not (module._parameters or module._buffers or extra_state):
                return  # ReLU, Dropout, containers...
        else:
            hint = module.__dict__.get(SIZE_HINT_ATTR)
            if not (isinstance(hint, SizeHint) and hint.describes(module)):
                state: dict[str, Any] = {}
                module._save_to_state_dict(state, prefix, True)
                self.add(state)
                return
        for name, tensor in module._parameters.items():
            if tensor is not None:
                self.size += _PER_KEY_CHAR_BYTES * (len(prefix) + len(name))
                self.add_tensor(tensor)
        for name, tensor in module._buffers.items():
            if tensor is not None and name not in module._non_persistent_buffers_set:
                self.size += _PER_KEY_CHAR_BYTES * (len(prefix) + len(name))
                self.add_tensor(tensor)
        if extra_state:
            self.add(module.get_extra_state())
        if hint is not None:
            self.add_hint(prefix, hint)


# bounded: FX makes a class for every GraphModule (see summary._is_quantized_class)
@functools.lru_cache(maxsize=1024)
def _saving(cls: type[nn.Module]) -> tuple[bool, bool]:
    """(whether `cls` saves its state with `nn.Module._save_to_state_dict`, whether it
    has extra state)."""
    return (
        cls._save_to_state_dict is nn.Module._save_to_state_dict,
        cls.get_extra_state is not nn.Module.get_extra_state,
    )


def _changes_state_dict(module: nn.Module) -> bool:
    """Whether state-dict hooks may add to what `module` saves. torch's FX-converted
    models carry one that adds functional packed weights (`*_packed_weight*`
    attributes) by scanning `dir(module)`: it adds nothing when there are none."""
    if module._state_dict_pre_hooks:
        return True
    for hook in module._state_dict_hooks.values():
        if records_recipe(hook):
            continue  # metadata only, counted by `add_recipe`
        origin = str(getattr(hook, "__module__", ""))
        if getattr(hook, "__name__", None) != "_save_packed_weight" or not origin.startswith(
            "torch.ao.quantization.fx."
        ):
            return True
        if any(
            "_packed_weight" in name and isinstance(value, torch._C.ScriptObject)
            for name, value in vars(module).items()
        ):
            return True
    return False


def module_walk(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """`list(model.named_modules())` (same order, a module registered twice listed once),
    without the generator per module: the run summary walks the model three times."""
    walked: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    stack: list[tuple[str, nn.Module]] = [("", model)]
    while stack:
        prefix, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        walked.append((prefix, module))
        children = module._modules
        if children:
            base = f"{prefix}." if prefix else ""
            stack.extend(
                (base + name, child)
                for name, child in reversed(children.items())
                if child is not None
            )
    return walked


def state_dict_size(
    model: nn.Module | Mapping[str, Any],
    modules: list[tuple[str, nn.Module]] | None = None,
) -> int:
    """About the bytes `torch.save(model.state_dict())` would write (within 1.5 %,
    0.4 % over 100 KB, on the models the constants above were fitted on).

    The storages of the state dict are summed (each once, whole, as torch.save
    writes them; per-channel scales of int8 weights included) plus the archive's
    overhead. Nothing is serialized, and the packed weights of quantized Linear /
    Conv modules are not unpacked where the backend left a `SizeHint`: this runs
    twice in every `fit`. `modules`: `module_walk(model)` where the caller has it.
    """
    counter = _SizeCounter()
    if isinstance(model, Model):
        model = model.model
    if not isinstance(model, nn.Module):
        counter.add_metadata(model)
        counter.add(model)
        return counter.total()
    if type(model).state_dict is nn.Module.state_dict:
        for prefix, module in modules if modules is not None else module_walk(model):
            if _changes_state_dict(module):
                break  # hooks may change the state dict: take the real one
            counter.module_chars += len(prefix)  # its `_metadata` entry
            counter.add_module(f"{prefix}." if prefix else "", module)
            if any(records_recipe(h) for h in module._state_dict_hooks.values()):
                for attr in RECIPE_ATTRS:
                    if attr in module.__dict__:
                        counter.add_recipe(module.__dict__[attr])
        else:
            return counter.total()
        counter = _SizeCounter()
    state = model.state_dict(keep_vars=True)
    counter.add_metadata(state)
    counter.add(state)
    return counter.total()
