"""The model wrapper `CompressionManager.model` returns (`load` for saved models is in
`loading.py`).

`Model` follows INC 2.x's `PyTorchModel` (spec 1.8): an `nn.Module` that holds
the current inner module as `_model`, forwards calls to it, and whose `.model`
setter swaps the inner module (QAT preparation and int8 conversion do that).
Differences from INC, on purpose:

* `state_dict()` / `load_state_dict()` delegate to the inner module, so keys
  carry no `_model.` prefix (INC's wrapper prefixes them, so a state dict taken
  from `cm.model` did not load into the plain model). A state dict whose keys
  all carry the prefix is still accepted, and a parent module that contains the
  wrapper saves and loads it without the prefix too.
* Once QAT has prepared a module of its own, `load_state_dict()` takes both the
  prepared model's state dict (a checkpoint the run saved while it trained, with
  its observers and fake-quant state: a resumed run goes on from there) and a
  float one (no fake-quant keys), which loads into the float module the prepared
  one shares its weights with; its observers start afresh.
* Attributes the wrapper does not have are read from the inner module
  (`model.config`, `model.save_pretrained`, `model.classifier` on a Hugging Face
  model), and assigning such an attribute assigns it on the inner module.
* Replacing the inner module notifies every listener (`add_listener`) through
  `on_model_replaced(old, new)`, so compressors re-resolve their state.
* A copy (`copy.deepcopy`, pickling) has no listeners.
* An int8 inner module (one the quantization backend made: it carries a recipe)
  stays on the CPU, where torch.ao's int8 kernels run: calls with inputs on a GPU
  are bridged, `.to(device)` / `.cuda()` keep it on the CPU and dtype casts are
  refused (see `int8_device.py`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import torch
from torch import nn

from . import int8_device
from .bf16 import bf16_recipe
from .distributed import is_main_process
from .int8_device import RECIPE_ATTR
from .pipeline_check import check_the_wrapped_model

__all__ = ["BEST_CONFIGURE", "CHECKPOINT_NAME", "Model", "ModelListener"]

#: file `save` writes inside its folder (INC's name)
CHECKPOINT_NAME = "best_model.pt"
#: config attribute that carries the QAT recipe of a fake-quant model saved while it
#: trains (integrations/hf_checkpoints.py turns such a folder into the int8 model)
QAT_RECIPE_KEY = "neural_coder_qat_recipe"
#: key of the quantization recipe inside the saved dict (INC's name)
BEST_CONFIGURE = "best_configure"
_PREFIX = "_model."
#: part of every observer / fake-quant key of a module torch.ao prepared
_FAKE_QUANT_KEY = "activation_post_process"


class ModelListener(Protocol):
    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None: ...


def _framework(conf: Any) -> str:
    """INC's framework name for a torch module under `conf` (spec 1.8)."""
    if conf is None:
        return "pytorch_fx"
    backend = getattr(conf, "backend", None)
    if backend == "default":
        return "pytorch_fx"
    if backend == "ipex":
        return "pytorch_ipex"
    return "pytorch"


def with_metadata(items: Any, source: Mapping[str, Any], rename: Any = None) -> OrderedDict:
    """An OrderedDict of `items` that keeps `source._metadata` (module versions, which
    quantized modules need to read their state), with metadata keys renamed by `rename`."""
    out: OrderedDict = OrderedDict(items)
    metadata = getattr(source, "_metadata", None)
    if metadata is not None:
        out._metadata = OrderedDict(  # type: ignore[attr-defined]
            ((rename(k) if rename else k), v) for k, v in metadata.items()
        )
    return out


def strip_prefix(state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    """Keys saved from an INC-style wrapper (`_model.x`) become `x` (all or nothing)."""
    if not state_dict or not all(isinstance(k, str) and k.startswith(_PREFIX) for k in state_dict):
        return state_dict

    def strip(key: str) -> str:
        if key == _PREFIX[:-1]:
            return ""
        return key[len(_PREFIX) :] if key.startswith(_PREFIX) else key

    return with_metadata(((strip(k), v) for k, v in state_dict.items()), state_dict, strip)


class Model(nn.Module):
    """Wraps the module being compressed; see the module docstring."""

    _model: nn.Module
    q_config: dict[str, Any] | None
    framework: str

    def __init__(self, model: nn.Module, conf: Any = None) -> None:
        super().__init__()
        if isinstance(model, Model):
            model = model.model
        if not isinstance(model, nn.Module):
            raise TypeError(f"Model wraps a torch.nn.Module, got {type(model).__name__}")
        self._model = model
        _bridge_int8(model)
        check_the_wrapped_model(Model)
        object.__setattr__(self, "_listeners", [])
        object.__setattr__(self, "_fp32_model", model)
        # plain attributes set directly: never forwarded to a same-named inner attribute
        object.__setattr__(self, "q_config", None)
        object.__setattr__(self, "framework", _framework(conf))
        if conf is not None and hasattr(type(conf), "framework"):
            # INC writes the framework back into the config
            try:
                conf.framework = self.framework
            except AttributeError:
                pass
        # a parent module that holds this wrapper loads it without the `_model.` prefix
        self._register_load_state_dict_pre_hook(_add_prefix_hook, with_module=True)

    # -- inner module --------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        """The current inner module (changes when QAT prepares or converts)."""
        return self._modules["_model"]  # type: ignore[return-value]

    @model.setter
    def model(self, new: nn.Module) -> None:
        if isinstance(new, Model):
            new = new.model
        if not isinstance(new, nn.Module):
            raise TypeError(f"Model.model must be a torch.nn.Module, got {type(new).__name__}")
        old = self._modules["_model"]
        self._modules["_model"] = new
        _bridge_int8(new)
        if old is not new:
            for listener in list(self._listeners):
                listener.on_model_replaced(old, new)  # type: ignore[arg-type]

    @property
    def fp32_model(self) -> nn.Module:
        """The module given at construction (the same object, not a copy)."""
        return self._fp32_model

    def add_listener(self, listener: ModelListener) -> None:
        """`listener.on_model_replaced(old, new)` runs after every inner-module swap."""
        if not any(existing is listener for existing in self._listeners):
            self._listeners.append(listener)

    def remove_listener(self, listener: ModelListener) -> None:
        self._listeners[:] = [x for x in self._listeners if x is not listener]

    @property
    def runs_int8_on_cpu(self) -> bool:
        """Whether the inner module is an int8 model of the quantization backend, whose
        kernels run on the CPU only (see `int8_device.py`)."""
        return _is_int8(self._modules["_model"])

    # -- nn.Module behaviour ---------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        # `runs_int8_on_cpu` inlined: this runs on every training step
        inner = self._modules["_model"]
        if isinstance(inner.__dict__.get(RECIPE_ATTR), dict):
            return int8_device.call_on_cpu(inner, args, kwargs)
        return inner(*args, **kwargs)

    def __prepare_scriptable__(self) -> nn.Module:
        """`torch.jit.script(model)` scripts the inner module: this wrapper's forward
        takes `*args, **kwargs`, which TorchScript cannot compile (INC's wrapper is not
        scriptable either), without the int8 bridge to other devices (`int8_device`)."""
        inner = self._modules["_model"]
        prepare = inner.__dict__.get("__prepare_scriptable__")
        return prepare() if callable(prepare) else inner  # type: ignore[return-value]

    def to(self, *args: Any, **kwargs: Any) -> Model:  # type: ignore[override]
        if not self.runs_int8_on_cpu:
            return super().to(*args, **kwargs)
        device, dtype, _non_blocking, _memory_format = torch._C._nn._parse_to(*args, **kwargs)
        int8_device.check_cast(dtype, "model.to")
        int8_device.note_kept_on_cpu(device, "model.to")
        return self

    def cuda(self, device: Any = None) -> Model:
        if not self.runs_int8_on_cpu:
            return super().cuda(device)
        int8_device.note_kept_on_cpu("cuda" if device is None else device, "model.cuda")
        return self

    def half(self) -> Model:
        if self.runs_int8_on_cpu:
            int8_device.check_cast(torch.float16, "model.half")
        return super().half()

    def bfloat16(self) -> Model:
        if self.runs_int8_on_cpu:
            int8_device.check_cast(torch.bfloat16, "model.bfloat16")
        return super().bfloat16()

    def double(self) -> Model:
        if self.runs_int8_on_cpu:
            int8_device.check_cast(torch.float64, "model.double")
        return super().double()

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("__") or name in ("_model", "_modules", "_listeners"):
                raise
            modules = self.__dict__.get("_modules")
            inner = modules.get("_model") if modules is not None else None
            if inner is None:
                raise
            check_the_wrapped_model(Model)  # a pipeline reads `config` before its model check
            return getattr(inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)  # runs the property's setter
            return
        inner = self.__dict__.get("_modules", {}).get("_model")
        if (
            inner is not None
            and name not in self.__dict__
            and name not in self._parameters
            and name not in self._buffers
            and name not in self._modules
            and not hasattr(type(self), name)
            and hasattr(inner, name)
        ):
            setattr(inner, name, value)
            return
        super().__setattr__(name, value)

    # container protocol of the inner module (nn.Sequential, nn.ModuleList, ...)
    def __getitem__(self, index: Any) -> Any:
        return self._modules["_model"][index]  # type: ignore[index]

    def __len__(self) -> int:
        return len(self._modules["_model"])  # type: ignore[arg-type]

    def __iter__(self) -> Any:
        return iter(self._modules["_model"])  # type: ignore[call-overload]

    def __bool__(self) -> bool:
        return True

    def __dir__(self) -> list[str]:
        inner = self.__dict__.get("_modules", {}).get("_model")
        return sorted(set(super().__dir__()) | (set(dir(inner)) if inner is not None else set()))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_listeners"] = []  # compressors are not copied with the model
        return state

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """The inner module's state dict (no `_model.` prefix; see the module docstring)."""
        return self._modules["_model"].state_dict(*args, **kwargs)  # type: ignore[union-attr]

    def load_state_dict(  # type: ignore[override]
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load into the inner module; keys prefixed with `_model.` (INC) are accepted, and
        a float state dict loads into the float module a QAT-prepared one shares its
        weights with (see the module docstring)."""
        state_dict = strip_prefix(state_dict)
        inner = self._modules["_model"]
        float_ckpt = not assign and self._is_float_for_prepared(state_dict)
        target = self._fp32_model if float_ckpt else inner
        return target.load_state_dict(  # type: ignore[union-attr]
            state_dict, strict=strict, assign=assign
        )

    def _is_float_for_prepared(self, state_dict: Mapping[str, Any]) -> bool:
        """The inner module is QAT's own prepared copy, with fake-quant state, and
        `state_dict` has none (a float checkpoint)."""
        inner = self._modules["_model"]
        if inner is self._fp32_model or _weights_not_shared(inner, self._fp32_model):
            return False
        return any(_FAKE_QUANT_KEY in k for k in inner.state_dict()) and not any(
            _FAKE_QUANT_KEY in k or "weight_fake_quant" in k for k in state_dict
        )

    # -- save ---------------------------------------------------------------------------
    def save(self, root: str | os.PathLike[str] | None = None) -> str:
        """Write `root/best_model.pt`: the inner state dict, plus under `best_configure`
        the quantization recipe when one is set, or the bf16 modules' names (`bf16_recipe`)
        of a `mix_precision.fit` result, so that `load` rebuilds either. `root` defaults to the workspace
        (`options.workspace`). Returns the file's path. Under torch.distributed only
        rank 0 writes; the other ranks return the same path without waiting for it."""
        if root is None:
            from .config import options

            root = options.workspace
        root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        path = os.path.join(root, CHECKPOINT_NAME)
        if not is_main_process():
            return path
        os.makedirs(root, exist_ok=True)
        inner_state = self.state_dict()
        state = with_metadata(inner_state.items(), inner_state)
        recipe = self.q_config
        if recipe is None:  # a mix_precision.fit result: which modules run in bf16
            recipe = bf16_recipe(self._modules["_model"])  # type: ignore[arg-type]
        if recipe is not None:
            if BEST_CONFIGURE in state:
                raise RuntimeError(f"the model has a parameter or buffer named {BEST_CONFIGURE!r}")
            state[BEST_CONFIGURE] = recipe
        torch.save(state, path)
        logging.getLogger("neural_coder.runtime").info(
            "compressed model saved to %s; load it with neural_coder.runtime.load(%r, <float model>)",
            path,
            root,
        )
        return path

    def save_pretrained(self, save_directory: str | os.PathLike[str], **kwargs: Any) -> str | None:
        """Hugging Face's `save_pretrained`, also for int8 models.

        A float inner model saves itself as usual. An int8 model cannot be written
        by Hugging Face's safetensors path (its packed weights are not tensors), so
        the folder gets the model's `config.json` (with `architectures` set to the
        model's class, as Hugging Face writes it) and this runtime's `best_model.pt`
        (state dict + quantization recipe); rebuild it with
        `neural_coder.runtime.integrations.transformers.OptimizedModel.from_pretrained(folder)`
        or `neural_coder.runtime.load(folder, AutoModelFor...from_config(config))`.

        Under torch.distributed only rank 0 writes. A float model's own
        `save_pretrained` still runs on every rank when it takes `is_main_process`
        (Hugging Face's does, and may need every rank for sharded weights), with
        `is_main_process=False` on the other ranks; otherwise they return at once
        (an int8 model: with the path rank 0 writes).
        """
        inner = self._modules["_model"]
        main = is_main_process()
        if self.q_config is None:
            save = inner.save_pretrained  # an AttributeError on every rank alike
            if main:
                with self._qat_recipe_in_config(inner):
                    return save(save_directory, **kwargs)  # type: ignore[operator]
            if _takes_is_main_process(save):
                return save(save_directory, **{**kwargs, "is_main_process": False})  # type: ignore[operator]
            return None
        if not main:
            return self.save(save_directory)  # writes nothing here: the path rank 0 writes
        os.makedirs(save_directory, exist_ok=True)
        config = getattr(inner, "config", None)
        if config is not None and hasattr(config, "save_pretrained"):
            # as Hugging Face's save_pretrained, so loaders find the class by name; on a
            # copy, so the live model's config is left as the user built it
            config = copy.deepcopy(config)
            config.architectures = [type(inner).__name__]
            config.save_pretrained(save_directory)
        path = self.save(save_directory)
        logging.getLogger("neural_coder.runtime").info(
            "int8 model saved to %s; load it with neural_coder.runtime.load(%r, <float model built from the config>)",
            path,
            os.fspath(save_directory),
        )
        return path

    @contextlib.contextmanager
    def _qat_recipe_in_config(self, inner: nn.Module) -> Iterator[None]:
        """A fake-quant model saved while QAT trains (a loop's best-epoch save_pretrained)
        records its QAT recipe in the saved config, as the Trainer integration does at the
        end of training, so `OptimizedModel.from_pretrained(folder)` builds the int8 model."""
        config = getattr(inner, "config", None)
        recipes = [
            recipe
            for listener in self._listeners
            if callable(getattr(listener, "fake_quant_recipe", None))
            and (recipe := listener.fake_quant_recipe()) is not None
        ]
        if config is None or not recipes or hasattr(config, QAT_RECIPE_KEY):
            yield
            return
        setattr(config, QAT_RECIPE_KEY, recipes[0])
        try:
            yield
        finally:
            delattr(config, QAT_RECIPE_KEY)


def _weights_not_shared(prepared: nn.Module, fp32: nn.Module) -> bool:
    """Some parameter of `prepared` is not one of `fp32`'s: loading into `fp32` would
    not reach it."""
    own = {id(p) for p in fp32.parameters()}
    return any(id(p) not in own for p in prepared.parameters())


def _is_int8(module: nn.Module) -> bool:
    return isinstance(module.__dict__.get(RECIPE_ATTR), dict)


def _bridge_int8(module: nn.Module) -> None:
    """An int8 inner module is bridged itself too, so that what reaches it past the
    wrapper's `forward` (Hugging Face's `generate` through `__getattr__`, the bare module
    `model.model`) runs on the CPU as well (see `int8_device.keep_on_cpu`)."""
    if _is_int8(module):
        int8_device.keep_on_cpu(module)


def _takes_is_main_process(method: Any) -> bool:
    try:
        return "is_main_process" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _add_prefix_hook(
    module: nn.Module,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """When a parent loads a state dict that holds this wrapper (saved without the
    `_model.` prefix, see `Model.state_dict`), rename `prefix.x` to `prefix._model.x`."""
    inner = prefix + _PREFIX
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix) :]] = state_dict.pop(key)
