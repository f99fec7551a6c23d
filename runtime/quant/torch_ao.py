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

import copy
import inspect
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch
from torch import nn
from torch.ao.quantization import QConfig

from ..int8_device import attach_recipe
from . import modules as qm
from .backend import (
    CHILDREN_PATH,
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
from .embeddings import _embedding_qconfigs, _quantize_embeddings
from .fx_fusion import (
    _branches_on_training,
    _fold_batch_norms,
    _FxContractError,
    _hidden_from_fusion,
    _is_quantized,
)
from .module_tree import (
    USER_CLASS,
    _copy,
    _first_line,
    _get_submodule,
    _hooks_suspended,
    _HookSnapshot,
    _keep_model_api,
    _set_submodule,
    _shared_ids,
    _take_over_hooks,
    keep_a_float_parameter,
)
from .pickling import make_picklable
from .qconfigs import _qconfig_mapping, _quiet, make_qconfig, resolve_reduce_range, select_engine
from .size_hints import (
    _WEIGHTED_TYPES,
    _attach_size_hints,
    _eager_layouts,
    _fx_layouts,
    _Layout,
    _observer_settings,
    _weight_layout,
)

log = logging.getLogger(__name__)

_DYNAMIC_TYPES = frozenset({nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell})
_RNN_TYPES = _DYNAMIC_TYPES - {nn.Linear}


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
            if prepared.path == CHILDREN_PATH:
                layouts = _eager_layouts(model)
                for name, child in list(model.named_children()):
                    if isinstance(child, torch.fx.GraphModule):
                        for key, layout in _fx_layouts(child).items():
                            layouts[f"{name}.{key}"] = layout
                        _set_submodule(model, name, convert_fx(child))
                for name, module in list(model.named_modules()):
                    if isinstance(module, qm.OBSERVED_TYPES):
                        _set_submodule(model, name, module.to_quantized())
            elif prepared.path == "fx":
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
        shared = _shared_ids(work)
        _linears_for_transposed(work, shared)
        qconfig_spec: dict[str, QConfig] = {}
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
        spec = QuantSpec.of_recipe(recipe)
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
        if spec.path == CHILDREN_PATH:
            self._prepare_children(model, spec, reduce_range)
            _take_over_hooks(before, model)
            make_picklable(model, model)
            return PreparedModel(model, CHILDREN_PATH, None, spec, info)
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

    def _prepare_children(self, model: nn.Module, spec: QuantSpec, reduce_range: bool) -> None:
        """Static PTQ that keeps `model` itself (its class): each direct child holding a
        quantizable module is FX-prepared at its name (eager where it does not trace), so
        int8 flows between the ops inside a child; calibration calls `model`."""
        leaves: list[str] = []
        for name, child in list(model.named_children()):
            if not any(qm.supports_eager(m) for m in child.modules()):
                continue
            if qm.supports_eager(child):  # a bare Linear / Conv: FX would make it functional
                leaves.append(name)
                continue
            scoped = _ScopedSpec(spec, f"{name}.")
            try:
                prepared = self._prepare_fx(child, scoped, reduce_range)  # type: ignore[arg-type]
            except Exception as exc:  # tracing fails in many ways
                log.info("%s cannot be FX-traced (%s): eager path for it", name, _first_line(exc))
                prepared = self._prepare_eager(child, scoped, reduce_range)  # type: ignore[arg-type]
            _set_submodule(model, name, prepared)
        if leaves:
            self._prepare_eager(model, spec, reduce_range, only=leaves)

    def _prepare_fx(self, model: nn.Module, spec: QuantSpec, reduce_range: bool) -> nn.Module:
        from torch.ao.quantization.quantize_fx import prepare_fx, prepare_qat_fx

        is_qat = spec.approach == QAT
        if is_qat and (branching := _branches_on_training(model)) is not None:
            # a detector returning its loss dict in training: eager QAT keeps both branches
            raise _FxContractError(f"the forward of {branching} branches on self.training")
        mapping, kept_float = _qconfig_mapping(model, spec, self.engine, reduce_range)
        example = spec.example_inputs if spec.example_inputs is not None else ()
        with _quiet(), _hidden_from_fusion(kept_float), _hooks_suspended(model):
            prepare = prepare_qat_fx if is_qat else prepare_fx
            prepared = prepare(model, mapping, example)
        self._check_optional_inputs_unread(model, prepared)
        if is_qat:
            self._reattach_unused(model, prepared)
            self._check_contract(model, prepared)
            self._check_hooked_modules_are_called(model, prepared)
        # the script's own methods (`net.init_hidden(batch_size)`) run on the prepared
        # model (its evaluation calibrates or tunes) and on the int8 one (`convert`)
        _keep_model_api(type(model), model, prepared)
        return prepared

    @staticmethod
    def _check_optional_inputs_unread(original: nn.Module, prepared: nn.Module) -> None:
        """`forward(self, idx, targets=None)` with `if targets is not None: loss = ...`:
        tracing takes every input for a tensor, so the graph always computes the branch
        and a call without `targets` (inference) would break; under QAT the graph even
        fake-quantizes the integer targets, and the first training step fails. The eager
        path keeps the branch."""
        try:
            parameters = inspect.signature(original.forward).parameters
        except (TypeError, ValueError):
            return
        optional = {name for name, p in parameters.items() if p.default is None}
        graph = getattr(prepared, "graph", None)
        for node in graph.nodes if graph is not None else ():
            if node.op == "placeholder" and node.target in optional and node.users:
                raise _FxContractError(
                    f"the traced forward always reads {node.target!r}, which defaults to None"
                )

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

    def _prepare_eager(
        self,
        model: nn.Module,
        spec: QuantSpec,
        reduce_range: bool,
        only: Collection[str] | None = None,
    ) -> nn.Module:
        """Swap each selected Linear / Conv (those at the names `only`, when given), at its
        name, in `model` itself."""
        is_qat = spec.approach == QAT
        shared = _shared_ids(model)
        with _quiet():
            for name, module in list(model.named_modules()):
                if not name or not qm.supports_eager(module) or (only and name not in only):
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
            "framework": "pytorch_fx" if prepared.path in ("fx", CHILDREN_PATH) else "pytorch",
            "path": prepared.path,
            "fallback_reason": prepared.fallback_reason,
            "reduce_range": prepared.info.get("reduce_range"),
            "spec": spec.to_dict(),
            "quantized_ops": self.quantized_module_names(model),
        }
        attach_recipe(model, recipe)
        keep_a_float_parameter(model)


def _linears_for_transposed(work: nn.Module, shared: Collection[int]) -> None:
    """Replace each transformers `Conv1D` of `work` (a copy being quantized) by the
    equivalent `nn.Linear`, which the dynamic kernels take (GPT-2's attention and MLP
    are all Conv1D); shared (tied) ones stay float, as shared Linears do."""
    for name, module in list(work.named_modules()):
        if name and qm.is_transposed_linear(module) and id(module) not in shared:
            if id(module.weight) not in shared:
                _set_submodule(work, name, qm.linear_from_transposed(module))


class _ScopedSpec:
    """A `QuantSpec` seen from a child module: its rules match the names under `prefix`."""

    def __init__(self, spec: QuantSpec, prefix: str) -> None:
        self.spec = spec
        self.prefix = prefix
        self.approach = spec.approach
        self.example_inputs = None  # the child's inputs are not the model's

    def plan_for(self, name: str, module: nn.Module) -> OpPlan | None:
        return self.spec.plan_for(self.prefix + name, module)


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
