"""Dataloader batches and model calls, shared by `quantization.fit`,
`mix_precision.fit` and `benchmark.fit`: splitting inputs from labels, moving them
to the model's device, calling the model, and the calibration batch cache."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

_LABEL_KEYS = ("labels", "label")


class ModelInputs:
    """The inputs of a model call that takes both positional and keyword arguments
    (``model(input_ids, attention_mask=mask)``), replayed the same way by `call_model`.
    INC's dispatch has no form for it (a mapping is keywords only, a tuple positional only)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"ModelInputs({len(self.args)} positional, keywords {sorted(self.kwargs)})"


# -- batches --------------------------------------------------------------------------
def split_batch(batch: Any) -> tuple[Any, Any]:
    """`(inputs, labels)` of one dataloader batch.

    `(x, y)` / `[x, y]` -> `(x, y)`; a 1-tuple -> `(x, None)`; a dict -> the dict
    without its `labels` / `label` key (Hugging Face) and that label; anything
    else (a tensor) -> `(batch, None)`. Tuples longer than 2 are `(x, y, ...)`.
    """
    if isinstance(batch, Mapping):
        labels = next((batch[k] for k in _LABEL_KEYS if k in batch), None)
        return {k: v for k, v in batch.items() if k not in _LABEL_KEYS}, labels
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None
        if len(batch) >= 2:
            return batch[0], batch[1]
    return batch, None


def forward_inputs(batch: Any, model: nn.Module) -> Any:
    """What one batch feeds the model for calibration or timing: `split_batch`'s
    inputs, except that a list of per-sample dicts the model takes whole is passed as
    one argument (detectron2's models), and that an encoder-decoder (T5, BART) keeps the batch's `labels`,
    from which it builds its decoder inputs when the batch has none."""
    if _sample_dicts_for_the_model(batch, model):
        return (batch,)
    inputs, labels = split_batch(batch)
    if isinstance(batch, (tuple, list)) and len(batch) > 2 and not isinstance(batch[0], Mapping):
        # `(images_1, images_2, target)` for `forward(self, input1, input2)` (a siamese
        # net): the inputs are the items the forward requires, the rest are labels
        required = _required_positional(model)
        if required is not None and 1 < required < len(batch):
            return tuple(batch[:required])
    if _images_list_for_the_model(inputs, model):
        return (list(inputs),)
    config = getattr(model, "config", None)
    if (
        isinstance(batch, Mapping)
        and labels is not None
        and getattr(config, "is_encoder_decoder", False)
        and not any(key.startswith("decoder_") for key in batch)
    ):
        return dict(batch)
    return inputs


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _forward_parameters(model: nn.Module) -> list[inspect.Parameter] | None:
    """The parameters of `model.forward` (None when they cannot be read)."""
    try:
        return list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError, AttributeError):
        return None


def _positional(parameters: list[inspect.Parameter] | None) -> list[inspect.Parameter] | None:
    """The positional parameters among `parameters`; None when unknown or `*args`."""
    if parameters is None or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return None
    return [p for p in parameters if p.kind in _POSITIONAL]


def _required_positional(model: nn.Module) -> int | None:
    """How many positional arguments `model.forward` requires (None: unknown, or
    `*args`)."""
    positional = _positional(_forward_parameters(model))
    if positional is None:
        return None
    return sum(1 for p in positional if p.default is inspect.Parameter.empty)


def _images_list_for_the_model(inputs: Any, model: nn.Module) -> bool:
    """Per-sample tensors (torchvision detection's `images` from a `tuple(zip(*batch))`
    collate) that the model takes as one list: its forward's first parameter is declared
    a list / sequence, or it cannot take that many positional arguments, so
    `model(*inputs)` would hand the second image in as the targets."""
    if not (
        isinstance(inputs, tuple | list)
        and len(inputs) > 1
        and all(isinstance(item, torch.Tensor) for item in inputs)
    ):
        return False
    positional = _positional(_forward_parameters(model))
    if positional is None:
        return False
    if len(inputs) > len(positional):
        return bool(positional)
    first = positional[0].annotation if positional else inspect.Parameter.empty
    text = first if isinstance(first, str) else repr(first)
    return first is not inspect.Parameter.empty and any(
        word in text for word in ("list", "List", "Sequence", "Iterable")
    )


def _sample_dicts_for_the_model(batch: Any, model: nn.Module) -> bool:
    """A list of per-sample dicts (detectron2's `batched_inputs`, a loader with a
    collate that returns the list) that the model takes whole: its forward cannot take
    the first dict's keys as keyword arguments, so the dicts are no `**inputs`."""
    if not (
        isinstance(batch, list | tuple)
        and batch
        and all(isinstance(item, Mapping) for item in batch)
    ):
        return False
    parameters = _forward_parameters(model)
    if parameters is None or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return False
    names = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    return not set(batch[0]) <= names


def call_model(model: Callable[..., Any], inputs: Any) -> Any:
    """`model(**inputs)` for a dict, `model(*inputs)` for a tuple / list, `model(*args,
    **kwargs)` for `ModelInputs`, else `model(inputs)`."""
    if isinstance(inputs, ModelInputs):
        return model(*inputs.args, **inputs.kwargs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def to_device(value: Any, device: torch.device | None) -> Any:
    """Tensors inside `value` moved to `device` (`tensors_to`); None leaves it as it is."""
    return value if device is None else tensors_to(value, device)


def tensors_to(value: Any, device: torch.device) -> Any:
    """`value` with its tensors moved to `device`, containers rebuilt as their own type
    (tuple, named tuple, list, dict, `ModelOutput` and other mapping classes, `ModelInputs`)."""
    if isinstance(value, torch.Tensor):
        return value if value.device == device else value.to(device)
    if isinstance(value, ModelInputs):
        return ModelInputs(*tensors_to(value.args, device), **tensors_to(value.kwargs, device))
    if isinstance(value, Mapping):
        moved = {k: tensors_to(v, device) for k, v in value.items()}
        if type(value) is dict:
            return moved
        return _rebuilt(value, moved)
    if isinstance(value, tuple):
        items = [tensors_to(v, device) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, list):
        return [tensors_to(v, device) for v in value]
    return value


def _rebuilt(mapping: Mapping[Any, Any], moved: dict[Any, Any]) -> Any:
    """A mapping of `mapping`'s class holding `moved` (a `ModelOutput` is a dataclass
    built from keywords), or the plain dict when the class cannot be rebuilt."""
    kind = type(mapping)
    try:
        if dataclasses.is_dataclass(mapping):
            return kind(**moved)
        return kind(moved)  # type: ignore[call-arg]
    except Exception:  # noqa: BLE001 - an unusual mapping class: its values still move
        return moved


def model_device(model: nn.Module) -> torch.device | None:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


def batch_size_of(loader: Any, inputs: Any = None) -> int:
    """The loader's `batch_size`, else the first dimension of the first tensor of `inputs`."""
    size = getattr(loader, "batch_size", None)
    if isinstance(size, int) and size > 0:
        return size
    tensor = _first_tensor(inputs)
    if tensor is not None and tensor.dim() > 0:
        return int(tensor.shape[0])
    return 1


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, ModelInputs):
        value = [*value.args, *value.kwargs.values()]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def prediction(output: Any) -> Any:
    """The prediction tensor of a model output: `.logits` (Hugging Face), the first
    element of a tuple / list, the `logits` (or first) value of a dict."""
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, Mapping) and output:
        return output["logits"] if "logits" in output else next(iter(output.values()))
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    return output


def _check_dataloader(loader: Any, name: str) -> None:
    if loader is not None and not hasattr(loader, "__iter__"):
        raise TypeError(
            f"{name} must be iterable (a torch DataLoader or any iterable of batches), "
            f"got {type(loader).__name__}"
        )


class _BatchCache:
    """The first batches of a loader, read once (calibration reuses them every trial)."""

    def __init__(self, loader: Any, model: nn.Module) -> None:
        self.loader = loader
        self.model = model
        self.batches: list[Any] = []
        self._iterator: Iterator[Any] | None = None
        self.exhausted = False

    def first(self, count: int) -> list[Any]:
        if len(self.batches) < count and not self.exhausted:
            if self._iterator is None:
                self._iterator = iter(self.loader)
            for batch in self._iterator:
                self.batches.append(forward_inputs(batch, self.model))
                if len(self.batches) >= count:
                    break
            else:
                self.exhausted = True
        return self.batches[:count]
