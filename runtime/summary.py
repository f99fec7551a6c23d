"""The run summary: what the compression did, logged as a table and written as JSON.

The training manager builds it at `on_train_end` (after every compressor's
`finalize`) from each compressor's `summary()`; the post-training `fit` entry
points call `report(final_model, size_before_bytes, extra)` the same way.

Keys always present: `quantized_modules` (counted on the final model),
`size_before_bytes` / `size_after_bytes` (serialized state-dict sizes),
`target_sparsity` and `sparsity` (null when no technique set them) and
`distillation_steps` (0 by default). The JSON goes to the file named by the
environment variable `NEURAL_CODER_SUMMARY` when it is set (rank 0 only under
torch.distributed).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .model import Model

__all__ = [
    "ENV_VAR",
    "LOGGER_NAME",
    "build_summary",
    "count_quantized_modules",
    "emit_summary",
    "format_table",
    "report",
    "runtime_logger",
    "state_dict_size",
]

LOGGER_NAME = "neural_coder.runtime"
ENV_VAR = "NEURAL_CODER_SUMMARY"

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
    nor the root logger has a handler (so a plain script shows the summary)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return logger


class _CountingWriter:
    """A write-only sink that only counts bytes (no second copy of the weights)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def state_dict_size(model: nn.Module | Mapping[str, Any]) -> int:
    """Bytes `torch.save(model.state_dict())` would write (measured in memory)."""
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    sink = _CountingWriter()
    try:
        torch.save(state, sink)  # type: ignore[arg-type]
        return sink.size
    except Exception:  # a torch build whose writer needs seek/tell
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getbuffer().nbytes


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


def count_quantized_modules(model: nn.Module) -> int:
    """Modules whose class (or a base class) lives in `torch.ao.nn.quantized*` or
    `torch.ao.nn.intrinsic.quantized*` (dynamic ones included). Quantize / DeQuantize
    stubs, FloatFunctional, the packed-weight holders inside quantized modules and the
    float "reference" modules are not counted."""
    return sum(1 for m in model.modules() if _is_quantized_class(type(m)))


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
    summary["quantized_modules"] = count_quantized_modules(inner)
    summary["size_before_bytes"] = size_before_bytes
    summary["size_after_bytes"] = state_dict_size(inner)
    return summary


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


def format_table(summary: Mapping[str, Any]) -> str:
    """A short two-column text table of the summary."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        if key in ("size_before_bytes", "size_after_bytes"):
            continue
        rows.append((key, _human(value)))
    before, after = summary.get("size_before_bytes"), summary.get("size_after_bytes")
    if before is not None or after is not None:
        ratio = ""
        if isinstance(before, int) and isinstance(after, int) and after > 0:
            ratio = f" ({before / after:.2f}x smaller)" if before >= after else ""
        rows.append(("model size", f"{_size(before)} -> {_size(after)}{ratio}"))
    width = max((len(k) for k, _ in rows), default=0)
    lines = ["compression summary", "-" * (width + 24)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def _is_main_process() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def emit_summary(summary: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Log the table and write the JSON to `path` (default: `$NEURAL_CODER_SUMMARY`).
    Nothing happens on ranks other than 0 under torch.distributed."""
    if not _is_main_process():
        return
    runtime_logger().info("%s", format_table(summary))
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


def report(
    model: nn.Module,
    size_before_bytes: int | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`build_summary` + `emit_summary`, for callers such as `quantization.fit`."""
    summary = build_summary(model, size_before_bytes, extra)
    emit_summary(summary)
    return summary
