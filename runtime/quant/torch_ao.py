"""`QuantBackend` on `torch.ao.quantization`, x86 engine (fbgemm where x86 is missing).

Path selection (QAT and static PTQ): FX graph mode first (`prepare_qat_fx` /
`prepare_fx` -> `convert_fx`, with a QConfigMapping built from the spec); when
symbolic tracing fails (Hugging Face models: transformers 5 has no FX tracer
and plain `torch.fx` fails on them) the module-level eager path of
`modules.py` takes over, and the first line of the tracing error is recorded.
Dynamic PTQ always swaps modules (`quantize_dynamic`): it has no activation
observers, so a graph would give the same `nnqd.Linear` modules and only cost
the model its class. BatchNorms that follow a conv are first folded into it
(found on an FX trace, changed in the module tree), as static FX quantization
and INC's dynamic path do: left alone they cost a small CNN about a fifth of
its time.

FX and the optimizer contract (checked after every FX preparation, eager is
used when it does not hold):

* `prepare_qat_fx` does not copy parameters: the GraphModule reuses the leaf
  modules and the QAT swap (`nniqat.ConvBn2d.from_float`, `nnqat.Linear...`)
  assigns the float module's Parameters (BN's included) to the QAT module.
  Conv+BN(+ReLU) is fused for QAT without folding, at the conv's name, so the
  module at the conv's name has `.weight` = the conv's Parameter; the BN
  moves under it (`conv.bn`) and its own name disappears.
* Ops the spec keeps float are hidden from fusion (their class is swapped for
  an identical alias during preparation), else FX would fuse an excluded
  conv with its BN into a float `ConvBnReLU2d` and move the conv to `conv.0`.
* Leaf modules that forward never calls are not in the GraphModule; they are
  attached back at their names so pruning still finds them.
* FX calls leaf modules only: a container is inlined, a BN fused into its
  conv is no longer called. When a module that someone hooked (distillation's
  feature capture) would stop running, the eager path is used instead. Hooks
  are suspended while FX traces (it would run them with Proxy values).
* Example inputs: torch.ao uses them only for standalone modules, which we
  never configure, so the spec's (the config's `example_inputs`) are passed
  when given and `()` otherwise: QAT needs no batch before training starts.

Hooks: a prepared module takes over the hook tables of the module it replaced
(`_take_over_hooks`); the int8 model `convert` returns is a converted *copy*
(the prepared model, which a script may still hold, stays a working fake-quant
model on its device) and carries no hooks.

Known limit of QAT from scratch: activation fake-quant uses INC's / torch's
moving-average min-max observers (averaging constant 0.01), initialised on the
first batch. A freshly initialised classifier head emits tiny logits, so its
output range starts tiny and widens by about 1% a step while the clipped
straight-through gradient holds the logits inside it: the first hundred or so
steps learn slowly (fine-tuning from a trained model, INC's use, is not hit).

Warnings torch.ao emits about its own deprecation are silenced inside the
backend's calls only.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import re
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.ao.quantization import (
    FixedQParamsFakeQuantize,
    FusedMovingAvgObsFakeQuantize,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
    QConfig,
    QConfigMapping,
    get_default_qat_qconfig_mapping,
    get_default_qconfig_mapping,
)

from . import modules as qm
from .backend import (
    DEFAULT_ACTIVATION,
    DEFAULT_WEIGHT,
    DYNAMIC,
    QAT,
    RECIPE_ATTR,
    RECIPE_FORMAT,
    STATIC,
    OpPlan,
    PreparedModel,
    QuantSpec,
    TensorScheme,
)
from .pickling import make_picklable

log = logging.getLogger(__name__)

_DEFAULT_PLAN = OpPlan(DEFAULT_ACTIVATION, DEFAULT_WEIGHT)
_WEIGHTED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
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
_DYNAMIC_TYPES = frozenset({nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell})
_RNN_TYPES = _DYNAMIC_TYPES - {nn.Linear}
#: quantized weight-only (int8 rows with a float scale and offset each) by static and dynamic PTQ
_EMBEDDING_TYPES = frozenset({nn.Embedding, nn.EmbeddingBag})

_QUIET = (
    "torch.ao.quantization is deprecated",
    "Please use quant_min and quant_max",
    "must run observer before calling calculate_qparams",
    "torch.quantize_per_tensor, torch.quantize_per_channel",
    "_aminmax is deprecated",
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        for text in _QUIET:
            warnings.filterwarnings("ignore", message=f".*{re.escape(text)}")
        yield


# -- engine and defaults -----------------------------------------------------
def select_engine() -> str:
    """`x86` where this torch build has it, else `fbgemm`; sets it process-wide."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm"):
        if engine in engines:
            torch.backends.quantized.engine = engine
            return engine
    raise RuntimeError(
        f"this torch build has no x86 int8 engine (supported: {engines}); "
        "int8 quantization needs an x86 CPU build of torch"
    )


@functools.cache
def _cpu_has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def resolve_reduce_range(spec: QuantSpec) -> bool:
    """INC: the user's value, else False on CPUs with VNNI (no int16 overflow), else True."""
    if spec.reduce_range is not None:
        return bool(spec.reduce_range)
    return not _cpu_has_vnni()


# -- qconfigs ---------------------------------------------------------------
def _activation(scheme: TensorScheme, approach: str, reduce_range: bool) -> Any:
    qscheme = torch.per_tensor_symmetric if scheme.scheme == "sym" else torch.per_tensor_affine
    qmax = 127 if reduce_range else 255
    if approach == QAT:
        return FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver,
            quant_min=0,
            quant_max=qmax,
            dtype=torch.quint8,
            qscheme=qscheme,
        )
    if approach == DYNAMIC:
        return PlaceholderObserver.with_args(
            dtype=torch.quint8, quant_min=0, quant_max=255, is_dynamic=True
        )
    # torch.ao has no percentile observer: the histogram (KL-style) one is the closest
    observer = HistogramObserver if scheme.algorithm in ("kl", "percentile") else MinMaxObserver
    return observer.with_args(dtype=torch.quint8, quant_min=0, quant_max=qmax, qscheme=qscheme)


def _weight(scheme: TensorScheme, approach: str) -> Any:
    per_channel = scheme.granularity != "per_tensor"
    sym = scheme.scheme not in ("asym", "asym_float")
    if per_channel:
        qscheme = torch.per_channel_symmetric if sym else torch.per_channel_affine
    else:
        qscheme = torch.per_tensor_symmetric if sym else torch.per_tensor_affine
    args: dict[str, Any] = {"dtype": torch.qint8, "quant_min": -128, "quant_max": 127}
    args["qscheme"] = qscheme
    if approach == QAT:
        observer = (
            MovingAveragePerChannelMinMaxObserver if per_channel else MovingAverageMinMaxObserver
        )
        return FusedMovingAvgObsFakeQuantize.with_args(observer=observer, **args)
    return (PerChannelMinMaxObserver if per_channel else MinMaxObserver).with_args(**args)


def make_qconfig(plan: OpPlan, approach: str, reduce_range: bool) -> QConfig:
    return QConfig(
        activation=_activation(plan.activation, approach, reduce_range),
        weight=_weight(plan.weight, approach),
    )


def _qconfig_mapping(
    model: nn.Module, spec: QuantSpec, engine: str, reduce_range: bool
) -> tuple[QConfigMapping, list[nn.Module]]:
    """torch's default mapping for the engine with our qconfig as the global one and
    per-module-name entries for the spec's rules; also the modules kept float."""
    is_qat = spec.approach == QAT
    default = make_qconfig(_DEFAULT_PLAN, spec.approach, reduce_range)
    if is_qat:
        mapping = get_default_qat_qconfig_mapping(engine)
    else:
        mapping = get_default_qconfig_mapping(engine)
    mapping.set_global(default)
    # entries that reuse torch's default activation (layer norm, transposed convs) get
    # ours with their own weight handling; fixed-qparams ops (sigmoid, softmax...) keep theirs
    for key, qconfig in list(mapping.object_type_qconfigs.items()):
        if qconfig is None or isinstance(key, str) or _is_fixed_qparams(qconfig.activation):
            continue
        mapping.set_object_type(key, QConfig(activation=default.activation, weight=qconfig.weight))
    kept_float: list[nn.Module] = []
    for name, module in model.named_modules():
        if not name or next(module.children(), None) is not None:
            continue
        plan = spec.plan_for(name, module)
        if plan is None:
            mapping.set_module_name(name, None)
            kept_float.append(module)
        elif plan != _DEFAULT_PLAN:
            mapping.set_module_name(name, make_qconfig(plan, spec.approach, reduce_range))
    return mapping, kept_float


def _is_fixed_qparams(factory: Any) -> bool:
    from torch.ao.quantization.observer import FixedQParamsObserver

    target = getattr(getattr(factory, "p", None), "func", factory)
    return isinstance(target, type) and issubclass(
        target, (FixedQParamsObserver, FixedQParamsFakeQuantize)
    )


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
        traced.__class__ = type(
            user_class.__name__,
            (type(traced),),
            {**methods, **names, **shared, USER_CLASS: user_class},
        )
    for name, value in vars(source).items():
        # nn.Module's own state is private (`_modules`, ...) but for `training`
        if not name.startswith("_") and name != "training" and name not in vars(traced):
            object.__setattr__(traced, name, value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _FxContractError(RuntimeError):
    """FX preparation broke the parameter / name contract; use the eager path."""


def _branches_on_training(model: nn.Module) -> str | None:
    """The first module FX would trace through (not one of torch's leaf modules) whose
    forward reads `self.training`."""
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
        if id(module) in shared or id(module.weight) in shared or module.weight.dtype != torch.float32:
            continue
        if isinstance(module, nn.EmbeddingBag) and module.mode != "sum":
            continue
        if spec.plan_for(name, module) is not None:
            qconfigs[name] = float_qparams_weight_only_qconfig
    return qconfigs


def _quantize_embeddings(model: nn.Module, qconfigs: Mapping[str, QConfig]) -> int:
    """Swap the embeddings at `qconfigs`' names for weight-only int8 ones; how many."""
    from torch.ao.nn.quantized.modules.embedding_ops import EmbeddingPackedParams

    from ..summary import SIZE_HINT_ATTR, SizeHint

    swapped = 0
    for name, qconfig in qconfigs.items():
        module = _get_submodule(model, name)
        if module is None or type(module) not in _EMBEDDING_TYPES:  # FX keeps leaf names
            continue
        rows, numel, zeros = module.num_embeddings, module.weight.numel(), _float_zeros(module.weight)
        quantized = qm.quantize_embedding(module, qconfig)
        _set_submodule(model, name, quantized)
        swapped += 1
        holder: Any = quantized._packed_params
        if type(holder)._save_to_state_dict is EmbeddingPackedParams._save_to_state_dict:
            # what its state dict unpacks: uint8 rows, float32 scale and offset a row
            entries = (("dtype", None, None), ("_packed_weight", numel, rows))
            hint = SizeHint(holder._packed_weight, entries, "_packed_weight", 8, (rows, numel, zeros))
            object.__setattr__(holder, SIZE_HINT_ATTR, hint)
    return swapped


# -- size hints ----------------------------------------------------------------
_PER_CHANNEL = frozenset(
    {torch.per_channel_symmetric, torch.per_channel_affine, torch.per_channel_affine_float_qparams}
)


#: (per-channel, has bias, zeros of the float weight) of an int8 weight
_Layout = tuple[bool, bool, int]


def _float_zeros(weight: torch.Tensor) -> int:
    return weight.numel() - int(torch.count_nonzero(weight.detach()))


def _weight_layout(weight_observer: Any, module: nn.Module) -> _Layout | None:
    """The layout of `module`'s weight once `weight_observer` made it int8; None when it
    does not (no hint is given then)."""
    if getattr(weight_observer, "dtype", None) != torch.qint8:
        return None
    per_channel = getattr(weight_observer, "qscheme", None) in _PER_CHANNEL
    return per_channel, module.bias is not None, _float_zeros(module.weight)


def _observer_settings(factory: Any) -> Any:
    """An object with the `dtype` and `qscheme` of the observers `factory` makes: read
    from its `with_args` keywords when both are there (no observer is built)."""
    keywords = getattr(getattr(factory, "p", None), "keywords", None) or {}
    if "dtype" in keywords and "qscheme" in keywords:
        return types.SimpleNamespace(dtype=keywords["dtype"], qscheme=keywords["qscheme"])
    return factory()


def _fx_layouts(prepared: nn.Module) -> dict[str, _Layout]:
    """Weight layouts of the Linear / Conv (fused or not) modules of an FX-prepared
    static model, from the qconfig FX resolved for each module call."""
    attrs = getattr(prepared, "meta", {}).get("_observed_graph_module_attrs")
    qconfigs = getattr(attrs, "node_name_to_qconfig", None) or {}
    graph = getattr(prepared, "graph", None)
    layouts: dict[str, _Layout] = {}
    observers: dict[int, Any] = {}
    for node in graph.nodes if graph is not None else ():
        qconfig = qconfigs.get(node.name) if node.op == "call_module" else None
        if qconfig is None or qconfig.weight is None:
            continue
        module = _get_submodule(prepared, str(node.target))
        if isinstance(module, nn.Sequential) and len(module) > 0:  # a fused module
            module = module[0]
        if type(module) not in _WEIGHTED_TYPES:
            continue
        factory = qconfig.weight
        if id(factory) not in observers:
            observers[id(factory)] = _observer_settings(factory)
        layout = _weight_layout(observers[id(factory)], module)
        if layout is not None:
            layouts[str(node.target)] = layout
    return layouts


def _eager_layouts(prepared: nn.Module) -> dict[str, _Layout]:
    layouts: dict[str, _Layout] = {}
    for name, module in prepared.named_modules():
        if isinstance(module, qm.OBSERVED_TYPES):
            layout = _weight_layout(module.weight_fake_quant, module)
            if layout is not None:
                layouts[name] = layout
    return layouts


def _attach_size_hints(model: nn.Module, layouts: Mapping[str, _Layout]) -> None:
    """Describe the packed weights of the int8 Linear / Conv modules at `layouts`' names
    for `summary.state_dict_size`, which then need not unpack them (an fbgemm unpack
    costs about what packing did). torch's own classes only: their state-dict layout
    is known."""
    import torch.ao.nn.quantized as nnq
    from torch.ao.nn.quantized.modules.conv import _ConvNd, _ConvTransposeNd
    from torch.ao.nn.quantized.modules.linear import LinearPackedParams

    from ..summary import SIZE_HINT_ATTR, SizeHint

    for name, (per_channel, has_bias, zeros) in layouts.items():
        module = _get_submodule(model, name)
        entries: list[tuple[str, int | None, int | None]]
        if isinstance(module, nnq.Linear):
            holder: Any = module._packed_params
            if (
                type(holder)._save_to_state_dict is not LinearPackedParams._save_to_state_dict
                or holder.dtype != torch.qint8
            ):
                continue
            out = module.out_features
            numel = module.in_features * out
            channels = out if per_channel else 0
            entries = [
                ("dtype", None, None),
                ("_packed_params", numel, channels),
                ("", 4 * out if has_bias else None, None),  # the float bias, in the same tuple
            ]
        elif isinstance(module, _ConvNd) and not isinstance(module, _ConvTransposeNd):
            holder = module
            if type(module)._save_to_state_dict is not _ConvNd._save_to_state_dict:
                continue
            out = module.out_channels
            numel = out * (module.in_channels // module.groups)
            for size in module.kernel_size:
                numel *= size
            entries = [
                ("weight", numel, out if per_channel else 0),
                ("bias", 4 * out if has_bias else None, None),
                ("scale", 4, None),
                ("zero_point", 8, None),
            ]
        else:
            continue
        hint = SizeHint(holder._packed_params, tuple(entries), weight=(out, numel, zeros))
        object.__setattr__(holder, SIZE_HINT_ATTR, hint)


# -- the backend -----------------------------------------------------------
class TorchAOBackend:
    """torch.ao.quantization on the x86 (or fbgemm) engine."""

    name = "torch.ao"

    def __init__(self) -> None:
        self.engine = select_engine()

    # -- QAT --------------------------------------------------------------------
    def prepare_qat(self, model: nn.Module, spec: QuantSpec) -> PreparedModel:
        """Prepare `model` itself for QAT (no copy: see the module docstring)."""
        spec = _with_approach(spec, QAT)
        model.train()
        return self._prepare(model, spec)

    def convert(self, prepared: PreparedModel, inplace: bool = False) -> nn.Module:
        """The int8 model (CPU, eval mode).

        By default a copy is converted: the prepared model, which the user's script
        may still hold (evaluation, `save_pretrained`, a CUDA device), stays a working
        fake-quant float model. `inplace=True` converts the prepared model itself.
        """
        from torch.ao.quantization.quantize_fx import convert_fx

        torch.backends.quantized.engine = self.engine
        hooks = _HookSnapshot(prepared.model)
        model = prepared.model if inplace else _copy(prepared.model, hooks, or_in_place=True)
        model = model.cpu().eval()
        with _quiet():
            if prepared.path == "fx":
                # QAT modules fold their BN at conversion: no hint, sizes unpack them
                is_static = prepared.spec.approach == STATIC
                layouts = _fx_layouts(model) if is_static else {}
                user_class = getattr(type(prepared.model), USER_CLASS, None)
                model = convert_fx(model)
                if user_class is not None:
                    _keep_model_api(user_class, prepared.model, model)
            else:
                layouts = _eager_layouts(model)
                for name, module in list(model.named_modules()):
                    if isinstance(module, qm.OBSERVED_TYPES):
                        _set_submodule(model, name, module.to_quantized())
        hooks.strip(model)
        make_picklable(model)
        model.eval()
        _attach_size_hints(model, layouts)
        self._attach_recipe(model, prepared)
        return model

    # -- PTQ --------------------------------------------------------------------
    def quantize_static(
        self, model: nn.Module, spec: QuantSpec, calibrate: Callable[[nn.Module], None]
    ) -> nn.Module:
        """A calibrated int8 copy of `model`; `calibrate(observed_model)` runs the batches
        (on the model's device; the int8 result is on the CPU)."""
        spec = _with_approach(spec, STATIC)
        hooks = _HookSnapshot(model)
        work = _copy(model, hooks, or_in_place=False).eval()
        # chosen on the float model: converting a Linear tied to an embedding unties them
        embeddings = _embedding_qconfigs(work, spec, _shared_ids(work))
        prepared = self._prepare(work, spec)
        with torch.no_grad():
            calibrate(prepared.model)
        int8 = self.convert(prepared, inplace=True)
        if _quantize_embeddings(int8, embeddings):
            getattr(int8, RECIPE_ATTR)["quantized_ops"] = self.quantized_module_names(int8)
        hooks.strip(int8)
        return int8

    def quantize_dynamic(self, model: nn.Module, spec: QuantSpec) -> nn.Module:
        """An int8 copy of `model` with dynamically quantized Linear / RNN modules and
        weight-only int8 embeddings."""
        from torch.ao.quantization import quantize_dynamic

        spec = _with_approach(spec, DYNAMIC)
        torch.backends.quantized.engine = self.engine
        hooks = _HookSnapshot(model)
        work = _copy(model, hooks, or_in_place=False).cpu().eval()
        reduce_range = resolve_reduce_range(spec)
        _fold_batch_norms(work)
        qconfig_spec: dict[str, QConfig] = {}
        shared = _shared_ids(work)
        for name, module in work.named_modules():
            if type(module) not in _DYNAMIC_TYPES or id(module) in shared:
                continue
            plan = spec.plan_for(name, module)
            if plan is None:
                continue
            if type(module) in _RNN_TYPES:  # dynamic RNN kernels take per-tensor weights
                weight = TensorScheme(scheme="sym", granularity="per_tensor")
                plan = OpPlan(plan.activation, weight)
            qconfig_spec[name] = make_qconfig(plan, DYNAMIC, reduce_range)
        embeddings = _embedding_qconfigs(work, spec, shared)
        layouts: dict[str, _Layout] = {}
        for name, qconfig in qconfig_spec.items():
            module = work.get_submodule(name)
            if type(module) is nn.Linear:
                layout = _weight_layout(_observer_settings(qconfig.weight), module)
                if layout is not None:
                    layouts[name] = layout
        with _quiet():
            quantize_dynamic(work, qconfig_spec=qconfig_spec, inplace=True)
        _quantize_embeddings(work, embeddings)
        _attach_size_hints(work, layouts)
        hooks.strip(work)
        prepared = PreparedModel(
            model=work,
            path="eager",
            fallback_reason=None,
            spec=spec.with_path("eager"),
            info={"engine": self.engine, "reduce_range": reduce_range},
        )
        self._attach_recipe(work, prepared)
        return work

    # -- inspection, save / load -----------------------------------------------
    def count_quantized_modules(self, model: nn.Module) -> int:
        """Modules that compute in int8 (Linear, Conv, fused variants, dynamic RNNs, Embedding)."""
        return sum(1 for m in model.modules() if _is_quantized(m))

    def quantized_module_names(self, model: nn.Module) -> list[str]:
        return [name for name, m in model.named_modules() if _is_quantized(m)]

    def rebuild(self, fp32_model: nn.Module, recipe: Mapping[str, Any]) -> nn.Module:
        """The int8 structure of `recipe` on a copy of `fp32_model`, ready for
        `load_state_dict` (scales come from the state dict, so nothing is calibrated)."""
        if recipe.get("format") != RECIPE_FORMAT:
            raise ValueError(
                f"not a neural_coder quantization recipe (format {recipe.get('format')!r}, "
                f"expected {RECIPE_FORMAT!r})"
            )
        spec = QuantSpec.from_dict(recipe["spec"])
        spec = QuantSpec(
            approach=spec.approach,
            rules=spec.rules,
            reduce_range=recipe.get("reduce_range", spec.reduce_range),
            path=recipe["path"],
        )
        with _quiet():
            if spec.approach == DYNAMIC:
                return self.quantize_dynamic(fp32_model, spec)
            if spec.approach == STATIC:
                return self.quantize_static(fp32_model, spec, lambda _m: None)
            return self.convert(self.prepare_qat(copy.deepcopy(fp32_model), spec), inplace=True)

    # -- internals ---------------------------------------------------------------
    def _prepare(self, model: nn.Module, spec: QuantSpec) -> PreparedModel:
        torch.backends.quantized.engine = self.engine
        before = dict(model.named_modules())
        reduce_range = resolve_reduce_range(spec)
        info = {"engine": self.engine, "reduce_range": reduce_range}
        reason: str | None = None
        if spec.path in (None, "fx"):
            try:
                fx_model = self._prepare_fx(model, spec, reduce_range)
            except Exception as exc:  # tracing fails in many ways (TraceError, TypeError...)
                if spec.path == "fx":
                    raise
                reason = _first_line(exc)
                log.info("FX quantization not possible (%s); using the eager path", reason)
            else:
                _take_over_hooks(before, fx_model)
                make_picklable(model, fx_model)  # `torch.save(model, f)` during training
                return PreparedModel(fx_model, "fx", None, spec.with_path("fx"), info)
        eager_model = self._prepare_eager(model, spec, reduce_range)
        _take_over_hooks(before, eager_model)
        make_picklable(model, eager_model)
        return PreparedModel(eager_model, "eager", reason, spec.with_path("eager"), info)

    def _prepare_fx(self, model: nn.Module, spec: QuantSpec, reduce_range: bool) -> nn.Module:
        from torch.ao.quantization.quantize_fx import prepare_fx, prepare_qat_fx

        is_qat = spec.approach == QAT
        if is_qat and (branching := _branches_on_training(model)) is not None:
            # traced in train mode, FX keeps only the training branch: the int8 model would
            # run it in eval too (a detector returning its loss dict at inference)
            raise _FxContractError(f"the forward of {branching} branches on self.training")
        mapping, kept_float = _qconfig_mapping(model, spec, self.engine, reduce_range)
        example = spec.example_inputs if spec.example_inputs is not None else ()
        with _quiet(), _hidden_from_fusion(kept_float), _hooks_suspended(model):
            prepare = prepare_qat_fx if is_qat else prepare_fx
            prepared = prepare(model, mapping, example)
        if is_qat:
            self._reattach_unused(model, prepared)
            self._check_contract(model, prepared)
            self._check_hooked_modules_are_called(model, prepared)
            _keep_model_api(type(model), model, prepared)
        return prepared

    @staticmethod
    def _check_hooked_modules_are_called(original: nn.Module, prepared: nn.Module) -> None:
        """A module someone hooked (distillation's feature capture) must still run.

        FX calls only leaf modules: a hooked container (`layer1`) or a BN fused into
        its conv would stop producing its output; the eager path keeps them all.
        """
        graph = getattr(prepared, "graph", None)
        if graph is None:
            return
        called = {node.target for node in graph.nodes if node.op == "call_module"}
        for name, module in original.named_modules():
            if name and name not in called and (module._forward_hooks or module._forward_pre_hooks):
                raise _FxContractError(f"FX would no longer call the hooked module {name!r}")

    @staticmethod
    def _reattach_unused(original: nn.Module, prepared: nn.Module) -> None:
        """Leaf modules forward never calls are not in the GraphModule: put them back."""
        present = {id(p) for p in prepared.parameters()}
        for name, module in original.named_modules():
            if not name or next(module.children(), None) is not None:
                continue
            own = list(module.parameters(recurse=False))
            if not own or any(id(p) in present for p in own):
                continue
            if _get_submodule(prepared, name) is None:
                _set_submodule(prepared, name, module, create=True)
                present.update(id(p) for p in own)

    @staticmethod
    def _check_contract(original: nn.Module, prepared: nn.Module) -> None:
        originals = {id(p) for p in original.parameters()}
        new = [n for n, p in prepared.named_parameters() if id(p) not in originals]
        if new:
            raise _FxContractError(f"FX preparation created new parameters: {new[:3]}")
        for name, module in original.named_modules():
            if type(module) not in _WEIGHTED_TYPES:
                continue
            target = _get_submodule(prepared, name)
            if target is None or getattr(target, "weight", None) is not module.weight:
                raise _FxContractError(f"FX preparation moved the weight of {name!r}")

    def _prepare_eager(self, model: nn.Module, spec: QuantSpec, reduce_range: bool) -> nn.Module:
        """Swap each selected Linear / Conv, at its name, in `model` itself."""
        is_qat = spec.approach == QAT
        shared = _shared_ids(model)
        with _quiet():
            for name, module in list(model.named_modules()):
                if not name or not qm.supports_eager(module):
                    continue
                if id(module) in shared or id(module.weight) in shared:
                    log.info("%s keeps float: its module or weight is shared (tied)", name)
                    continue
                plan = spec.plan_for(name, module)
                if plan is None:
                    continue
                qconfig = make_qconfig(plan, spec.approach, reduce_range)
                observed = qm.observe(module, qconfig, fake_quant_weight=is_qat)
                observed.to(module.weight.device)
                _set_submodule(model, name, observed)
        return model

    def _attach_recipe(self, model: nn.Module, prepared: PreparedModel) -> None:
        spec = prepared.spec
        recipe = {
            "format": RECIPE_FORMAT,
            "backend": self.name,
            "engine": prepared.info.get("engine", self.engine),
            "approach": spec.approach,
            "is_oneshot": spec.approach == QAT,
            "framework": "pytorch_fx" if prepared.path == "fx" else "pytorch",
            "path": prepared.path,
            "fallback_reason": prepared.fallback_reason,
            "reduce_range": prepared.info.get("reduce_range"),
            "spec": spec.to_dict(),
            "quantized_ops": self.quantized_module_names(model),
        }
        # a plain attribute: not in the state dict, survives deepcopy
        object.__setattr__(model, RECIPE_ATTR, recipe)


def _with_approach(spec: QuantSpec, approach: str) -> QuantSpec:
    if spec.approach == approach:
        return spec
    return QuantSpec(
        approach=approach,
        rules=spec.rules,
        reduce_range=spec.reduce_range,
        path=spec.path,
        example_inputs=spec.example_inputs,
    )
