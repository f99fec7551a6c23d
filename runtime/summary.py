"""The run summary: what the compression did, logged as a table and written as JSON.

The training manager builds it at `on_train_end` (after every compressor's
`finalize`) from each compressor's `summary()`; the post-training `fit` entry
points call `report(final_model, size_before_bytes, extra)` the same way, which
measures nothing when the summary would be shown nowhere (`summary_shown`: the
runtime logger quieted below INFO, no summary or report file, or a rank other than 0).

Keys always present: `quantized_modules` (counted on the final model),
`size_before_bytes` / `size_after_bytes` (estimates of what
`torch.save(model.state_dict())` would write, within 1.5 % of it and 0.4 % over
100 KB, computed without serializing: `state_dict_size`),
`target_sparsity` and `sparsity` (null when no technique set them) and
`distillation_steps` (0 by default). The JSON goes to the file named by the
environment variable `NEURAL_CODER_SUMMARY` when it is set (rank 0 only under
torch.distributed).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .model import Model
from .state_size import SIZE_HINT_ATTR as SIZE_HINT_ATTR  # re-exported: summary.SIZE_HINT_ATTR
from .state_size import SizeHint as SizeHint  # re-exported: summary.SizeHint
from .state_size import count_zeros, module_walk, state_dict_size, weight_facts

__all__ = [
    "ENV_VAR",
    "LOGGER_NAME",
    "build_summary",
    "count_quantized_modules",
    "emit_summary",
    "format_table",
    "record",
    "report",
    "runtime_logger",
    "state_dict_size",
    "summary_shown",
]

LOGGER_NAME = "neural_coder.runtime"
ENV_VAR = "NEURAL_CODER_SUMMARY"
#: a JSON-lines file each runtime result is appended to (`record`), for a caller that
#: runs the script and needs the figures as data (`neural-coder auto`)
RECORD_ENV_VAR = "NEURAL_CODER_REPORT"

#: keys every summary has, with the value used when no technique provided one
DEFAULTS: dict[str, Any] = {
    "target_sparsity": None,
    "sparsity": None,
    "distillation_steps": 0,
}

_QUANTIZED_PACKAGES = (
    "torch.ao.nn.quantized",  # includes torch.ao.nn.quantized.dynamic
    "torch.ao.nn.intrinsic.quantized",  # includes .dynamic
)
#: classes in those packages that do not compute in int8
_NOT_COUNTED_PACKAGES = ("torch.ao.nn.quantized.reference",)
_NOT_COUNTED_NAMES = frozenset({"Quantize", "DeQuantize", "FloatFunctional", "FXFloatFunctional"})


def runtime_logger() -> logging.Logger:
    """The `neural_coder.runtime` logger, given a stderr handler at INFO when neither it
    nor the root logger has a handler (so a plain script shows the summary). When the
    script configured logging itself (`logging.basicConfig(handlers=[...])`, which leaves
    the root at WARNING, as Hugging Face example scripts do), its handlers show the summary:
    the logger gets INFO unless a level was set on it."""
    logger = logging.getLogger(LOGGER_NAME)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        if logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return logger


# bounded rather than functools.cache: FX makes a new class for every GraphModule, and an
# unbounded cache would keep each one (and its generated forward) alive for the process
@functools.lru_cache(maxsize=1024)
def _is_quantized_class(cls: type) -> bool:
    for klass in cls.__mro__:
        module = getattr(klass, "__module__", "") or ""
        name = klass.__name__
        if (
            module.startswith(_NOT_COUNTED_PACKAGES)
            or name in _NOT_COUNTED_NAMES
            or name.endswith("PackedParams")  # weight holders inside a quantized module
        ):
            return False
        if module.startswith(_QUANTIZED_PACKAGES):
            return True
    return False


def count_quantized_modules(
    model: nn.Module, modules: list[tuple[str, nn.Module]] | None = None
) -> int:
    """Modules whose class (or a base class) lives in `torch.ao.nn.quantized*` or
    `torch.ao.nn.intrinsic.quantized*` (dynamic ones included), plus the int8 linear and
    convolution calls an FX-converted graph makes itself (`torch.ops.quantized.linear`
    on a packed weight: a model that is one `nn.Linear`, or calls `F.linear` on its own
    parameters). Quantize / DeQuantize stubs, FloatFunctional, the packed-weight holders
    inside quantized modules and the float "reference" modules are not counted.
    `modules`: `module_walk(model)`."""
    walked = modules if modules is not None else module_walk(model)
    return sum(1 for _, m in walked if _is_quantized_class(type(m))) + sum(
        _quantized_graph_calls(m) for _, m in walked
    )


def _quantized_graph_calls(module: nn.Module) -> int:
    graph = module.__dict__.get("_graph")  # an FX GraphModule's graph, without building it
    if graph is None or not hasattr(graph, "nodes"):
        return 0
    return sum(
        1
        for node in graph.nodes
        if node.op == "call_function"
        and str(node.target).startswith(("quantized.linear", "quantized.conv"))
    )


def build_summary(
    model: nn.Module,
    size_before_bytes: int | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary of a finished run on `model` (the final, possibly int8, module).

    `extra` (compressor summaries merged in list order, or what a `fit` knows) comes
    first; the measured `quantized_modules`, `size_before_bytes` and
    `size_after_bytes` always reflect `model`, and `DEFAULTS` fill missing keys.
    """
    inner = model.model if isinstance(model, Model) else model
    summary: dict[str, Any] = dict(DEFAULTS)
    summary.update(extra or {})
    modules = module_walk(inner)  # walked once for the three measurements
    summary["quantized_modules"] = count_quantized_modules(inner, modules)
    summary["size_before_bytes"] = size_before_bytes
    summary["size_after_bytes"] = state_dict_size(inner, modules)
    summary.update(storage_facts(inner, summary["size_after_bytes"], modules))
    return summary


_INDEX_BYTES = 4  # CSR with int32 column indices and row pointers


def _weight_of(module: nn.Module) -> Any:
    """`getattr(module, "weight", None)`, without the AttributeError most modules raise."""
    weight = module._parameters.get("weight")
    if weight is None:
        weight = module._buffers.get("weight")
    if weight is None and ("weight" in module.__dict__ or hasattr(type(module), "weight")):
        weight = getattr(module, "weight", None)
    return weight


def _weights(modules: list[tuple[str, nn.Module]]) -> Iterator[tuple[int, int, int, int, bool]]:
    """(rows, elements, zeros, bytes per element, whether int8) of each weight matrix or kernel: float,
    or the int8 one of a quantized module (from the backend's description where there is
    one: unpacking a packed weight costs about what packing it did)."""
    for _, module in modules:
        weight = _weight_of(module)
        if callable(weight) and _is_quantized_class(type(module)):
            facts = weight_facts(module)
            if facts is not None:
                yield (*facts, 1, True)
                continue
            try:
                weight = weight()
            except (RuntimeError, TypeError):
                continue
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
            count = weight.numel()
            element = 1 if weight.is_quantized else weight.element_size()
            zeros = count_zeros(weight)
            yield weight.shape[0], count, zeros, element, weight.is_quantized


def storage_facts(
    model: nn.Module, size_bytes: int, modules: list[tuple[str, nn.Module]] | None = None
) -> dict[str, Any]:
    """What the size line needs to be honest: how many weights are zero (pruning keeps their
    dense storage), what CSR storage of the weights would take instead, and how much of an
    int8 model is int8 weights rather than per-tensor metadata."""
    zeros = total = int8_bytes = 0
    saved = 0
    with torch.no_grad():
        walked = modules if modules is not None else module_walk(model)
        for rows, count, zero, element, is_int8 in _weights(walked):
            zeros, total = zeros + zero, total + count
            int8_bytes += count if is_int8 else 0
            dense = count * element
            csr = (count - zero) * (element + _INDEX_BYTES) + (rows + 1) * _INDEX_BYTES
            saved += max(0, dense - csr)
    return {
        "weights_zero": zeros,
        "weights_total": total,
        "sparse_size_bytes": size_bytes - saved if saved else None,
        "int8_weight_bytes": int8_bytes or None,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def _human(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return _human(value)
    if value < 1024:
        return f"{value} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    size, index = value / 1024, 0
    while size >= 1024 and index < len(units) - 1:
        size, index = size / 1024, index + 1
    return f"{size:.1f} {units[index]}"


_SIZE_KEYS = frozenset(
    {"size_before_bytes", "size_after_bytes", "weights_zero", "weights_total",
     "sparse_size_bytes", "int8_weight_bytes"}
)  # fmt: skip


def _size_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The size as it is: smaller, or larger with the reason; zeros kept in dense storage
    with what sparse storage would take."""
    before, after = summary.get("size_before_bytes"), summary.get("size_after_bytes")
    if before is None and after is None:
        return []
    line = f"{_size(before)} -> {_size(after)}"
    if isinstance(before, int) and isinstance(after, int) and after > 0:
        if before > after:
            line += f" ({before / after:.2f}x smaller)"
        elif before == after:
            line += " (same storage)"
        else:
            line += f" ({after / before:.2f}x larger)"
    rows = [("model size", line)]
    int8 = summary.get("int8_weight_bytes")
    if int8 and isinstance(before, int) and isinstance(after, int) and after >= before:
        rows.append((
            "  why",
            f"the int8 weights take {_size(int8)}, a quarter of fp32; the rest is per-layer "
            "scales, zero points and packing that a model this small cannot amortise",
        ))  # fmt: skip
    zeros, total = summary.get("weights_zero") or 0, summary.get("weights_total") or 0
    if total and zeros / total >= 0.01:  # below that: weights that happen to be zero
        rows.append(
            ("weights zero", f"{zeros} of {total} ({zeros / total:.1%}), kept in dense storage")
        )
        sparse = summary.get("sparse_size_bytes")
        if sparse is not None:
            rows.append(("  sparse (CSR)", f"{_size(sparse)} if stored as sparse tensors"))
    return rows


def _stage_rows(stages: list[Any]) -> list[tuple[str, str]]:
    """A multi-shot pipeline's stages, one row each: epochs, steps and effect."""
    rows = []
    for number, stage in enumerate(stages, 1):
        if not isinstance(stage, Mapping):
            continue
        epochs = stage.get("epochs")
        span = f"epochs {epochs[0]}-{epochs[1]}" if epochs else "did not run"
        effect = ", ".join(
            f"{k} {_human(v)}"
            for k, v in stage.items()
            if k not in ("stage", "epochs", "planned_epochs")
        )
        rows.append((f"stage {number}", f"{stage.get('stage')} ({span}): {effect}"))
    return rows


def _shrink_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Structured shrinking (`pruning/shrink.py`): parameters and latency, before -> after."""
    before, after = summary.get("shrink_params_before"), summary.get("shrink_params_after")
    if not isinstance(before, int) or not isinstance(after, int):
        return []
    line = f"{before} -> {after}"
    if after and before > after:
        line += f" ({before / after:.2f}x fewer, {summary.get('shrink_channels_removed', 0)} channels removed)"
    rows = [("parameters (shrunk)", line)]
    t0, t1 = summary.get("shrink_latency_before_ms"), summary.get("shrink_latency_after_ms")
    if isinstance(t0, float) and isinstance(t1, float) and t1 > 0:
        rows.append((
            "  latency",
            f"{t0:.3f} ms -> {t1:.3f} ms per eval forward on a training batch ({t0 / t1:.2f}x)",
        ))  # fmt: skip
    return rows


def format_table(summary: Mapping[str, Any]) -> str:
    """A short two-column text table of the summary."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        if key in _SIZE_KEYS or (key.startswith("shrink_") and key != "shrink_note"):
            continue
        if key == "stages" and isinstance(value, list):
            rows += _stage_rows(value)
            continue
        rows.append((key, _human(value)))
    rows += _shrink_rows(summary)
    rows += _size_rows(summary)
    width = max((len(k) for k, _ in rows), default=0)
    lines = ["compression summary", "-" * (width + 24)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def _is_main_process() -> bool:
    from .distributed import is_main_process

    return is_main_process()


def emit_summary(summary: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Log the table and write the JSON to `path` (default: `$NEURAL_CODER_SUMMARY`).
    Nothing happens on ranks other than 0 under torch.distributed (every rank builds
    the same summary; rank 0 logs and writes it)."""
    if not _is_main_process():
        return
    logger = runtime_logger()
    if logger.isEnabledFor(logging.INFO):  # the table is not built for nothing
        logger.info("%s", format_table(summary))
    target = os.fspath(path) if path is not None else os.environ.get(ENV_VAR)
    if not target:
        return
    target = os.path.abspath(os.path.expanduser(target))
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    text = json.dumps(dict(summary), indent=2, sort_keys=True, default=_jsonable)
    fd, tmp = tempfile.mkstemp(prefix=".summary-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def record(kind: str, data: Mapping[str, Any]) -> None:
    """Append `{"kind": kind, **data}` as one JSON line to `$NEURAL_CODER_REPORT`, when
    it is set (rank 0 only). One `write` of one line: readers may poll the file."""
    target = os.environ.get(RECORD_ENV_VAR)
    if not target or not _is_main_process():
        return
    line = json.dumps({"kind": kind, **data}, sort_keys=True, default=_jsonable)
    with open(os.path.abspath(os.path.expanduser(target)), "a", encoding="utf-8") as f:
        f.write(line + "\n")


def summary_shown() -> bool:
    """Whether `report` would show a summary anywhere: the runtime logger logs INFO
    (`runtime_logger` gives it INFO unless the script set a level), or
    `$NEURAL_CODER_SUMMARY` / `$NEURAL_CODER_REPORT` names a file; rank 0 only. When it
    would not, measuring the model for it is work nobody sees."""
    if not (
        logging.getLogger(LOGGER_NAME).isEnabledFor(logging.INFO)
        or os.environ.get(ENV_VAR)
        or os.environ.get(RECORD_ENV_VAR)
    ):
        return False
    return _is_main_process()


def report(
    model: nn.Module,
    size_before_bytes: int | None | Callable[[], int | None],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """`build_summary` + `emit_summary` + `record`, for callers such as
    `quantization.fit`; nothing is measured (None is returned) when the summary would
    not be shown (`summary_shown`). `size_before_bytes` may be a function that measures
    it (`fit` leaves the fp32 model unchanged, so it measures the same at the end)."""
    if not summary_shown():
        return None
    if callable(size_before_bytes):
        size_before_bytes = size_before_bytes()
    summary = build_summary(model, size_before_bytes, extra)
    emit_summary(summary)
    record("fit", summary)
    return summary
