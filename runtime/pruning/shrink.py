"""Structured shrinking: remove pruned channels so the model really has fewer parameters.

Masks make a model sparse, not smaller or faster on a CPU. After channel or filter
pruning (`1xchannel` / `channelx1` patterns, or any mask that clears whole rows or
columns), `shrink_model` removes the channels the masks made useless and the layers
that depend on them follow: batch norms, the next convolution or linear, both sides
of a residual addition, the slices of a concatenation.

The dependency analysis is torch-pruning's DepGraph (`torch_pruning.DependencyGraph`,
imported on first use: the runtime itself needs only torch). DepGraph couples the
channels; this module decides which of them can go *without changing the model's
outputs*, so the shrunk model computes what the masked one computed:

* a channel is **unused** when every convolution or linear that reads it (every
  consumer in its DepGraph group) has all-zero input weights for it (`channelx1`
  masks on a Linear, or every kernel position of a conv input channel pruned);
* a channel is **dead** when every convolution or linear that writes it (every
  producer in the group: both sides of a residual addition) has an all-zero output
  row and bias, and every batch norm on the way maps zero to zero (`1xchannel`
  masks; with `WeightPruningConfig(shrink=True)` the pruning compressor also masks
  the bias and the following batch norm of a pruned row, see `follower_params`).

Groups holding any other parameterised module (LayerNorm, GroupNorm, embeddings,
bare Parameters) are left whole: removing a channel would change their statistics.
At least one channel of every group stays. The outputs on the example inputs are
compared before and after; `ShrinkReport.max_abs_diff` says how far they moved.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..batches import ModelInputs

__all__ = [
    "INSTALL_HINT",
    "ShrinkMismatchError",
    "ShrinkReport",
    "ShrinkUnavailableError",
    "count_parameters",
    "coupled_writers",
    "dependency_graph",
    "follower_params",
    "measure_latency",
    "shrink_model",
]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'neural-coder[structured]' (or: pip install torch-pruning)"

_CONV = nn.modules.conv._ConvNd
_BN = nn.modules.batchnorm._BatchNorm


#: outputs may move by this much (relative to their largest magnitude) when channels leave
CHECK_TOLERANCE = 1e-3


class ShrinkUnavailableError(ImportError):
    """torch-pruning, which shrinking needs for the dependency analysis, is not installed."""


class ShrinkMismatchError(RuntimeError):
    """The shrunk model computed something else than the masked one; it was restored."""


def _backup(model: nn.Module) -> nn.Module | None:
    try:
        return copy.deepcopy(model)
    except Exception as exc:  # modules holding objects deepcopy cannot copy
        log.warning("shrink: the model cannot be copied (%s); it cannot be restored", exc)
        return None


def _restore(model: nn.Module, backup: nn.Module) -> None:
    """Put every module of `model` back as in `backup` (a deep copy taken before),
    keeping the module objects the caller holds."""
    for module, saved in zip(list(model.modules()), list(backup.modules())):
        state = dict(saved.__dict__)
        state["_modules"] = module.__dict__["_modules"]  # the caller's children stay
        module.__dict__.clear()
        module.__dict__.update(state)


def _torch_pruning() -> Any:
    try:
        import torch_pruning
    except ImportError as exc:
        raise ShrinkUnavailableError(
            "removing pruned channels (shrink) needs torch-pruning for the dependency "
            f"analysis, which is not installed: {INSTALL_HINT}"
        ) from exc
    return torch_pruning


@dataclass
class ShrinkReport:
    """What `shrink_model` did."""

    params_before: int
    params_after: int
    #: layer name -> output channels removed (input-only removals are in `inputs_removed`)
    channels_removed: dict[str, int] = field(default_factory=dict)
    inputs_removed: dict[str, int] = field(default_factory=dict)
    #: largest absolute difference of the outputs on the example inputs (None: not checked)
    max_abs_diff: float | None = None
    latency_before_ms: float | None = None
    latency_after_ms: float | None = None

    def as_summary(self) -> dict[str, Any]:
        """The keys the run summary shows (`summary.py` formats them)."""
        out = {f"shrink_{k}": v for k, v in asdict(self).items()}
        out["shrink_channels_removed_per_layer"] = dict(self.channels_removed)
        out["shrink_channels_removed"] = sum(self.channels_removed.values())
        out["shrink_inputs_removed"] = sum(self.inputs_removed.values())
        return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _as_args(example_inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_inputs, ModelInputs):
        return example_inputs.args, example_inputs.kwargs
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    found = getattr(value, "logits", None)  # Hugging Face ModelOutput
    return [found] if isinstance(found, torch.Tensor) else []


def _run(model: nn.Module, example_inputs: Any) -> Any:
    with torch.no_grad():
        return _forward(model, example_inputs)


def _forward(model: nn.Module, example_inputs: Any) -> Any:
    """DepGraph's `forward_fn`: one call, however the inputs are given (DepGraph itself
    would try `model(*tensor)` first, unpacking a batch into arguments)."""
    args, kwargs = _as_args(example_inputs)
    return model(*args, **kwargs)


def measure_latency(model: nn.Module, example_inputs: Any, repeats: int = 10) -> float:
    """The fastest of `repeats` eval-mode forwards on `example_inputs`, in wall-clock
    milliseconds: on a shared machine a descheduled thread makes some runs hundreds of
    times slower, and the fastest run is what the model itself costs."""
    was_training = model.training
    model.eval()
    try:
        for _ in range(2):  # warm-up
            _run(model, example_inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            _run(model, example_inputs)
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return 1000.0 * min(times)


# -- which channels can go ----------------------------------------------------------------
def _zero_rows(module: nn.Module, idxs: Sequence[int]) -> list[bool]:
    """Per output index: the row (and its bias) is all zero."""
    weight = module.weight.detach()
    rows = weight[list(idxs)].reshape(len(idxs), -1)
    dead = (rows == 0).all(dim=1)
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor):
        dead &= bias.detach()[list(idxs)] == 0
    return dead.tolist()


def _zero_columns(module: nn.Module, idxs: Sequence[int]) -> list[bool]:
    """Per input index: every weight reading it is zero (False for grouped convs)."""
    if isinstance(module, _CONV) and (module.groups != 1 or module.transposed):
        return [False] * len(idxs)
    weight = module.weight.detach()
    cols = weight[:, list(idxs)].movedim(1, 0).reshape(len(idxs), -1)
    return (cols == 0).all(dim=1).tolist()


def _bn_maps_zero_to_zero(bn: _BN, idxs: Sequence[int]) -> list[bool]:
    index = list(idxs)
    if bn.track_running_stats and bn.running_mean is not None:
        shift = -bn.running_mean.detach()[index] / torch.sqrt(
            bn.running_var.detach()[index] + bn.eps
        )
    else:
        shift = torch.zeros(len(index))
    if bn.affine:
        shift = shift * bn.weight.detach()[index] + bn.bias.detach()[index]
    return (shift.abs() <= 1e-12).tolist()


def _removable(group: Any, dg: Any, root_count: int) -> tuple[list[int], bool]:
    """Root indices of a full group whose channel is dead or unused, and whether the
    group could be judged at all (False when it holds a module we cannot reason about)."""
    dead = [True] * root_count
    unused = [True] * root_count
    producers = consumers = 0
    for item in group:
        dep, idxs = item.dep, item.idxs
        module = dep.target.module
        roots = item.root_idxs
        handler = dep.handler
        if isinstance(module, nn.Parameter):
            return [], False
        if not isinstance(module, nn.Module):
            continue  # DepGraph's own nodes for add / cat / reshape / elementwise ops
        if isinstance(module, (_CONV, nn.Linear)):
            if dg.is_out_channel_pruning_fn(handler):
                producers += 1
                for root, ok in zip(roots, _zero_rows(module, idxs)):
                    dead[root] = dead[root] and ok
                if isinstance(module, _CONV) and module.groups != 1:
                    # a depthwise conv's input follows its output: it both writes and reads
                    consumers += 1
                    for root in roots:
                        unused[root] = False
            elif dg.is_in_channel_pruning_fn(handler):
                consumers += 1
                for root, ok in zip(roots, _zero_columns(module, idxs)):
                    unused[root] = unused[root] and ok
        elif isinstance(module, _BN):
            for root, ok in zip(roots, _bn_maps_zero_to_zero(module, idxs)):
                dead[root] = dead[root] and ok
        elif any(True for _ in module.parameters(recurse=False)) or any(
            True for _ in module.buffers(recurse=False)
        ):
            return [], False
    keep = [(producers > 0 and dead[i]) or (consumers > 0 and unused[i]) for i in range(root_count)]
    removable = [i for i, ok in enumerate(keep) if ok]
    if len(removable) >= root_count:
        removable = removable[1:]  # a layer keeps at least one channel
    return removable, True


def _removal_counts(group: Any, dg: Any) -> tuple[dict[str, int], dict[str, int]]:
    names = {m: n for n, m in dg.model.named_modules()}
    outs: dict[str, int] = {}
    ins: dict[str, int] = {}
    for item in group:
        module = item.dep.target.module
        if not isinstance(module, (_CONV, nn.Linear)) or module not in names:
            continue
        if dg.is_out_channel_pruning_fn(item.dep.handler):
            outs[names[module]] = outs.get(names[module], 0) + len(item.idxs)
        elif dg.is_in_channel_pruning_fn(item.dep.handler):
            ins[names[module]] = ins.get(names[module], 0) + len(item.idxs)
    return outs, ins


def shrink_model(
    model: nn.Module,
    example_inputs: Any,
    *,
    ignored_layers: Iterable[nn.Module] = (),
    measure: bool = False,
    check: bool = True,
) -> ShrinkReport:
    """Remove, in place, every channel of `model` that its masks made dead or unused
    (see the module docstring); return what changed.

    `example_inputs`: a tensor, a tuple of positional inputs, a dict of keyword
    inputs, or `ModelInputs(*args, **kwargs)`, as `model` is called (a small batch is enough; DepGraph traces one forward).
    `ignored_layers`: modules whose output channels must stay (the model's outputs
    are always kept: DepGraph never removes the output channels of the last layer
    a channel reaches when nothing reads it). `measure`: time an eval-mode forward
    before and after. `check`: compare the outputs before and after; when they differ
    (beyond `CHECK_TOLERANCE`), the model is restored (from a deep copy taken first) and
    `ShrinkMismatchError` is raised.

    The modules are modified in place (same objects, smaller weights), so every
    reference to `model` sees the smaller model. Train/eval mode is restored.
    Raises `ShrinkUnavailableError` without torch-pruning.
    """
    tp = _torch_pruning()
    was_training = model.training
    model.eval()
    try:
        report = ShrinkReport(count_parameters(model), 0)
        reference = _tensors(_run(model, example_inputs)) if check else []
        backup = _backup(model) if check else None
        if measure:
            report.latency_before_ms = measure_latency(model, example_inputs)
        ignored = list(ignored_layers)
        ignored += _output_layers(model, example_inputs)
        with torch.enable_grad():
            dg = tp.DependencyGraph().build_dependency(
                model, example_inputs=example_inputs, forward_fn=_forward, verbose=False
            )  # `ignored` is not given here: DepGraph would not trace through those layers
            for group in dg.get_all_groups(ignored_layers=ignored):
                root = group[0].dep.target.module
                root_count = len(group[0].idxs)
                removable, judged = _removable(group, dg, root_count)
                if not judged or not removable:
                    continue
                pruning = dg.get_pruning_group(root, group[0].dep.handler, removable)
                outs, ins = _removal_counts(pruning, dg)
                for name, n in outs.items():
                    report.channels_removed[name] = report.channels_removed.get(name, 0) + n
                for name, n in ins.items():
                    report.inputs_removed[name] = report.inputs_removed.get(name, 0) + n
                pruning.prune(record_history=False)
        report.params_after = count_parameters(model)
        if check:
            after = _tensors(_run(model, example_inputs))
            diffs = [
                float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
                for a, b in zip(reference, after)
            ]
            report.max_abs_diff = max(diffs, default=0.0)
            scale = max((float(t.float().abs().max()) for t in reference if t.numel()), default=1.0)
            if report.max_abs_diff > CHECK_TOLERANCE * max(1.0, scale):
                if backup is not None:
                    _restore(model, backup)
                raise ShrinkMismatchError(
                    f"removing the pruned channels changed the model's outputs by up to "
                    f"{report.max_abs_diff:.3g} on the example inputs (an operation the "
                    "dependency analysis does not model); "
                    + (
                        "the model was left as it was"
                        if backup is not None
                        else "the model could not be copied first, so it stays changed"
                    )
                )
        if measure:
            report.latency_after_ms = measure_latency(model, example_inputs)
    finally:
        model.train(was_training)
    log.info(
        "shrink: %d -> %d parameters (%d output channels removed)",
        report.params_before,
        report.params_after,
        sum(report.channels_removed.values()),
    )
    return report


def _output_layers(model: nn.Module, example_inputs: Any) -> list[nn.Module]:
    """The leaf modules whose output is (part of) the model's output: their output
    channels are what the caller receives, so they never shrink."""
    produced: dict[int, nn.Module] = {}

    def remember(module: nn.Module, _inputs: Any, output: Any) -> None:
        for t in _tensors(output):
            produced[id(t)] = module

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(remember) for m in leaves]
    try:
        outputs = _tensors(_run(model, example_inputs))
    finally:
        for h in handles:
            h.remove()
    return [produced[id(t)] for t in outputs if id(t) in produced]


# -- while training with shrink=True ----------------------------------------------------------
def dependency_graph(model: nn.Module, example_inputs: Any) -> Any:
    """torch-pruning's DepGraph of `model`, traced in eval mode (running stats untouched)."""
    tp = _torch_pruning()
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(
                model, example_inputs=example_inputs, forward_fn=_forward, verbose=False
            )
    finally:
        model.train(was_training)


def coupled_writers(dg: Any, layers: dict[str, nn.Module]) -> list[list[str]]:
    """Groups of `layers` that write the same channels, index for index (both sides of
    a residual addition), when every writer of those channels is among `layers`. A
    channel of such a group can only leave when all of them prune it."""
    names = {module: name for name, module in layers.items()}
    seen: set[str] = set()
    groups: list[list[str]] = []
    for name, module in layers.items():
        if name in seen or not isinstance(module, (_CONV, nn.Linear)):
            continue
        pruner = dg.get_pruner_of_module(module)
        count = pruner.get_out_channels(module)
        whole = list(range(count))
        group = dg.get_pruning_group(module, pruner.prune_out_channels, whole)
        writers: list[str] = []
        for item in group:
            target = item.dep.target.module
            if isinstance(target, (_CONV, nn.Linear)) and dg.is_out_channel_pruning_fn(
                item.dep.handler
            ):
                if target not in names or list(item.idxs) != whole:
                    writers = []  # a writer outside the pruner, or channels mapped elsewhere
                    break
                writers.append(names[target])
        seen.update(writers)
        if len(set(writers)) > 1:
            groups.append(sorted(set(writers)))
    return groups


def follower_params(
    model: nn.Module, example_inputs: Any, layers: dict[str, nn.Module], dg: Any = None
) -> dict[str, list[nn.Parameter]]:
    """Per layer name: the 1-D parameters indexed by its output channels that must be
    zero for a pruned row to output zero, its own bias and the affine weight and bias
    of a batch norm that reads only this layer. The pruning compressor masks them with
    the row mask when `shrink=True`, so the model that trains is the one that shrinks."""
    if dg is None:
        dg = dependency_graph(model, example_inputs)
    out: dict[str, list[nn.Parameter]] = {}
    for name, module in layers.items():
        params: list[nn.Parameter] = []
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            params.append(bias)
        node = dg.module2node.get(module)
        if node is not None:
            bns = [n.module for n in node.outputs if isinstance(n.module, _BN)]
            for bn in bns:
                bn_node = dg.module2node[bn]
                if len(bn_node.inputs) == 1 and bn.affine:
                    params += [bn.weight, bn.bias]
        out[name] = params
    return out


def row_keep(mask: torch.Tensor) -> torch.Tensor:
    """Per output row of a weight mask: whether anything of the row is kept."""
    return mask.reshape(mask.shape[0], -1).any(dim=1)
