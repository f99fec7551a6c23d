"""Capture the outputs of named submodules with forward hooks (spec 4.2).

A `FeatureCapture` records, for each layer spec (a dotted module name and an
output process), the outputs of that submodule of one model. The student's
capture records only while the hooked module is in training mode; the
teacher's always records (and detaches, the teacher is a target). Features are
kept until `clear` (the compressor clears them at `on_step_begin`, before it
runs the teacher itself, and after every loss).

Model replacement (QAT preparation swaps Linear / Conv modules and may swap the
whole top-level module, keeping their dotted names): `attach(new_model)`
removes this capture's hooks from the old modules, resolves every name again
on the new model and registers fresh hooks there. A name that no longer
exists is an error that names it and lists close matches (FX fusion moves a
BatchNorm under its conv, ``bn1`` -> ``conv1.bn``). Hooks of this capture that
a module swap copied onto a new module (torch.ao copies hooks on swap) are
removed before registering, so no layer records twice.

Note: after QAT FX fusion the module at a conv's name may be a fused
Conv+ReLU (or Conv+BN+ReLU), whose output is the activation's output; its
feature is then post-activation.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["FeatureCapture", "LayerSpec", "Processor", "UnknownLayerError", "select_output"]

#: '' (the whole output), a key (dict output), a numeric index string (tuple/list), or a callable
Processor = str | Callable[[Any], Any]


class UnknownLayerError(AttributeError):
    """A layer name in ``layer_mappings`` names no submodule of the model."""


@dataclass(frozen=True)
class LayerSpec:
    """One captured layer: a dotted module name ('' is the model itself) and its output process."""

    name: str
    process: Processor = ""


def select_output(output: Any, process: Processor, layer: str = "") -> Any:
    """Apply an output process to a module's output (INC's ``record_output`` rules)."""
    if isinstance(process, str) and process == "":
        return output
    if callable(process):
        return process(output)
    if isinstance(output, Mapping) and process in output:
        return output[process]
    if isinstance(output, (tuple, list)) and process.isdigit():
        index = int(process)
        if index < len(output):
            return output[index]
        raise IndexError(
            f"layer {layer!r}: output index {process!r} is out of range for a "
            f"{type(output).__name__} of length {len(output)}"
        )
    raise ValueError(
        f"layer {layer!r}: cannot apply the output process {process!r} to a "
        f"{type(output).__name__} output; use a key of a dict output, a numeric string index "
        "of a tuple / list output, or a callable"
    )


class _RecordHook:
    """The forward hook of one layer spec of one capture (identifiable for removal)."""

    def __init__(self, capture: FeatureCapture, slot: int) -> None:
        self.capture = capture
        self.slot = slot

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        capture = self.capture
        if capture.paused or (capture.student and not module.training):
            return
        if capture.eval_only and module.training:
            return
        spec = capture.specs[self.slot]
        value = select_output(output, spec.process, spec.name)
        if not capture.student and isinstance(value, torch.Tensor):
            value = value.detach()
        capture.features[self.slot].append(value)


def _close_matches(name: str, names: list[str]) -> list[str]:
    """Names like ``name``, and names whose last part matches it (``bn1`` -> ``conv1.bn``)."""
    found = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    tail = name.rsplit(".", 1)[-1].rstrip("0123456789")
    for n in names:
        last = n.rsplit(".", 1)[-1].rstrip("0123456789")
        if n not in found and tail and last == tail:
            found.append(n)
    return found[:5]


class FeatureCapture:
    """Forward hooks recording the outputs of named submodules of one model."""

    def __init__(self, specs: Sequence[LayerSpec], *, side: str, student: bool) -> None:
        self.specs = list(specs)
        self.side = side
        self.student = student
        #: ``features[i]`` holds the outputs recorded for ``specs[i]`` since the last `clear`
        self.features: list[list[Any]] = [[] for _ in self.specs]
        self.paused = False
        #: record only from modules in eval mode (a teacher that is the student itself)
        self.eval_only = False
        self._handles: list[RemovableHandle] = []
        self._model: nn.Module | None = None

    @property
    def attached(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> nn.Module | None:
        """The model the hooks are on (None when detached)."""
        return self._model

    def resolve(self, model: nn.Module, context: str = "") -> list[nn.Module]:
        """The submodule at every spec's name; raises `UnknownLayerError` naming the missing ones."""
        modules: list[nn.Module] = []
        missing: list[str] = []
        for spec in self.specs:
            try:
                modules.append(model.get_submodule(spec.name))
            except AttributeError:
                missing.append(spec.name)
        if missing:
            names = [n for n, _ in model.named_modules() if n]
            parts = []
            for name in dict.fromkeys(missing):
                close = _close_matches(name, names)
                hint = (
                    f"close matches: {', '.join(map(repr, close))}"
                    if close
                    else f"its submodules include: {', '.join(map(repr, names[:8]))}"
                )
                parts.append(f"{name!r} ({hint})")
            prefix = f"{context}: " if context else ""
            raise UnknownLayerError(
                f"{prefix}the {self.side} model ({type(model).__name__}) has no submodule "
                + "; no submodule ".join(parts)
            )
        return modules

    def attach(self, model: nn.Module, context: str = "") -> None:
        """Hook every layer of ``model``, first removing this capture's hooks from anywhere.

        When a name cannot be resolved the capture stays detached and
        `UnknownLayerError` says which name.
        """
        self.detach()
        modules = self.resolve(model, context)
        for module in dict.fromkeys(modules):
            self._drop_copies(module)
        for slot, module in enumerate(modules):
            self._handles.append(module.register_forward_hook(_RecordHook(self, slot)))
        self._model = model

    def detach(self) -> None:
        """Remove every hook of this capture and forget its features."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._model = None
        self.clear()

    def clear(self) -> None:
        for recorded in self.features:
            recorded.clear()

    @contextlib.contextmanager
    def pausing(self) -> Iterator[None]:
        """Record nothing inside the block (a teacher forward that runs the student itself)."""
        before = self.paused
        self.paused = True
        try:
            yield
        finally:
            self.paused = before

    def _drop_copies(self, module: nn.Module) -> None:
        hooks = module._forward_hooks
        for key in [
            k for k, h in hooks.items() if isinstance(h, _RecordHook) and h.capture is self
        ]:
            del hooks[key]
