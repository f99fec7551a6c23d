"""The module tree around FX: setting and getting submodules, shared weights, hook tables
carried over to the prepared model, the copy `convert` works on, the model's own class."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

#: the backend's messages keep their logger name
log = logging.getLogger("neural_coder.runtime.quant.torch_ao")


# -- helpers -----------------------------------------------------------------
def _set_submodule(root: nn.Module, name: str, module: nn.Module, create: bool = False) -> None:
    parent = root
    *path, last = name.split(".")
    for part in path:
        child = getattr(parent, part, None)
        if not isinstance(child, nn.Module):
            if not create:
                raise AttributeError(f"{type(root).__name__} has no submodule {name!r}")
            child = nn.Module()
            parent.add_module(part, child)
        parent = child
    setattr(parent, last, module)


def _get_submodule(root: nn.Module, name: str) -> nn.Module | None:
    try:
        return root.get_submodule(name)
    except AttributeError:
        return None


def _shared_ids(model: nn.Module) -> set[int]:
    """ids of modules registered at several names and of Parameters several modules hold
    (tied weights): replacing them would untie what the model ties."""
    seen_modules: dict[int, int] = {}
    for _, module in model.named_modules(remove_duplicate=False):
        seen_modules[id(module)] = seen_modules.get(id(module), 0) + 1
    seen_params: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        seen_params[id(param)] = seen_params.get(id(param), 0) + 1
    return {i for i, n in seen_modules.items() if n > 1} | {
        i for i, n in seen_params.items() if n > 1
    }


_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks")
#: every per-module hook table: the prepared module takes all of them over
_ALL_HOOK_TABLES = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _take_over_hooks(before: Mapping[str, nn.Module], model: nn.Module) -> None:
    """A module that replaced the one at name N takes over N's hook tables (the same
    dict objects, not copies).

    So a hook registered before preparation keeps firing with no re-registration
    (the wrapper does not notify when QAT's eager path keeps the top-level
    object), and its handle still works: `handle.remove()` then a new
    registration (what a compressor does in `on_model_replaced`) leaves exactly
    one. torch.ao's swap registers copies instead, which a removal cannot reach.
    """
    for name, module in model.named_modules():
        old = before.get(name)
        if old is None or old is module:
            continue
        for table in _ALL_HOOK_TABLES:
            if hasattr(old, table):
                object.__setattr__(module, table, getattr(old, table))


@contextlib.contextmanager
def _hooks_suspended(model: nn.Module) -> Iterator[None]:
    """No module hook runs while FX traces (it would run hooks of the modules it traces
    through with Proxy values, and a feature capture would record a Proxy); torch.ao's
    swap finds nothing to copy. The same tables are put back afterwards."""
    saved: list[tuple[nn.Module, str, Any]] = []
    for module in model.modules():
        for table in _ALL_HOOK_TABLES:
            current = getattr(module, table, None)
            if current:
                saved.append((module, table, current))
                object.__setattr__(module, table, type(current)())
    try:
        yield
    finally:
        for module, table, current in saved:
            object.__setattr__(module, table, current)


class _HookSnapshot:
    """The forward hooks of a model's modules before it is copied and converted.

    An int8 copy is a new model (the wrapper notifies, compressors re-register
    their hooks by name), so it carries none of them: `strip` removes what the
    copy (or torch.ao's swap) carried over onto modules that are not the
    snapshot's own.
    """

    def __init__(self, model: nn.Module) -> None:
        self.module_ids = {id(m) for m in model.modules()}
        self.functions = [
            fn
            for m in model.modules()
            for table in _HOOK_TABLES
            for fn in getattr(m, table).values()
        ]
        self.hooks = {id(fn) for fn in self.functions}

    def strip(self, model: nn.Module) -> None:
        if not self.hooks:
            return
        for module in model.modules():
            if id(module) in self.module_ids:
                continue
            for name in _HOOK_TABLES:
                table = getattr(module, name)
                for key in [k for k, fn in table.items() if id(fn) in self.hooks]:
                    del table[key]


def _copy(model: nn.Module, hooks: _HookSnapshot, or_in_place: bool) -> nn.Module:
    """A deep copy that shares (does not copy) the hook callables: a bound-method hook
    would otherwise drag its owner (a distillation compressor and its teacher) along."""
    memo: dict[int, Any] = {id(fn): fn for fn in hooks.functions}
    try:
        return copy.deepcopy(model, memo)
    except Exception as exc:  # an attribute that cannot be copied (a lock, a file...)
        if not or_in_place:
            raise
        log.warning("cannot copy the QAT model (%s); converting it in place", _first_line(exc))
        return model


USER_CLASS = "_neural_coder_user_class"


def _keep_model_api(user_class: type, source: nn.Module, traced: nn.Module) -> None:
    """FX hands back a GraphModule that has the model's forward and submodules but
    not the rest of its class: the methods a training script may call on the model
    (`model.training_step(batch, i)`, `model.configure_optimizers()`) and its plain
    attributes (`model.lr`). Give `traced` a subclass that carries them, and copy the
    attributes from `source`; its forward stays the traced (fake-quant) one."""
    if not isinstance(traced, torch.fx.GraphModule) or user_class is type(traced):
        return
    methods: dict[str, Any] = {}
    for klass in reversed(user_class.__mro__):
        if klass in nn.Module.__mro__ or issubclass(torch.fx.GraphModule, klass):
            continue
        for name, value in vars(klass).items():
            if name.startswith("__") or name == "forward" or hasattr(torch.fx.GraphModule, name):
                continue
            methods[name] = value
    if methods:
        names = {"__module__": user_class.__module__, "__qualname__": user_class.__qualname__}
        # GraphModule.recompile (which pickling runs) wraps __call__ once per class; the
        # subclass shares its parent's wrapper, or a second one would call the first forever
        wrapped = vars(type(traced)).get("_wrapped_call")
        shared = {"_wrapped_call": wrapped} if wrapped is not None else {}
        # a deep copy makes a GraphModule class of its own below this one, whose wrapper
        # calls up to the parent's: the parent's `call_wrapped` would look up the copy's
        # wrapper again and call it forever; nn.Module's own call ends the chain here
        shared["__call__"] = nn.Module.__call__
        traced.__class__ = type(
            user_class.__name__,
            (type(traced),),
            {**methods, **names, **shared, USER_CLASS: user_class},
        )
    for name, value in vars(source).items():
        # nn.Module's own state is private (`_modules`, ...) but for `training`
        if not name.startswith("_") and name != "training" and name not in vars(traced):
            object.__setattr__(traced, name, value)


#: the one empty float parameter of an int8 model that has none left (`keep_a_float_parameter`)
FLOAT_ANCHOR = "_neural_coder_float_anchor"


def keep_a_float_parameter(model: nn.Module) -> None:
    """An int8 model whose every weight went into packed int8 params (an LSTM and a Linear
    quantized dynamically, the embedding weight-only) has no parameter left, and the
    script's own `weight = next(self.parameters())` (an RNN's `init_hidden`, for the dtype
    and device of its zero state) raises StopIteration. Give the model one empty float32
    parameter on the CPU, where int8 runs. It is saved (an empty entry), so the state
    dict is what the model holds; a state dict saved without it still loads."""
    if next(model.parameters(), None) is not None or FLOAT_ANCHOR in model._parameters:
        return
    model.register_parameter(FLOAT_ANCHOR, nn.Parameter(torch.empty(0), requires_grad=False))
    model.register_load_state_dict_post_hook(_anchor_not_missing)


def _anchor_not_missing(module: nn.Module, incompatible: Any) -> None:
    missing = incompatible.missing_keys
    missing[:] = [k for k in missing if k.rsplit(".", 1)[-1] != FLOAT_ANCHOR]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
