"""Hugging Face folders of compressed models: `save_for_huggingface_upstream` (INC's format)
and `OptimizedModel.from_pretrained` (see `neural_coder.runtime.integrations.transformers`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import transformers
from torch import nn
from transformers import AutoConfig

from .. import int8_device
from ..loading import load
from ..model import BEST_CONFIGURE, CHECKPOINT_NAME, QAT_RECIPE_KEY
from ..quant import QAT, QuantSpec, get_backend, get_recipe
from ..quant.backend import RECIPE_FORMAT
from .results import bare_module

#: weights file of `save_for_huggingface_upstream` (INC's name)
WEIGHTS_NAME = "pytorch_model.bin"
_SAFE_WEIGHTS = "model.safetensors"
_SAFE_INDEX = "model.safetensors.index.json"


# -- saving and loading ---------------------------------------------------------------------
def save_for_huggingface_upstream(
    model: Any, tokenizer: Any, output_dir: str | os.PathLike[str]
) -> str:
    """INC 2.x's `neural_compressor.utils.load_huggingface.save_for_huggingface_upstream`.

    An int8 model (`compression_manager.model` after QAT, `quantization.fit`'s result,
    or a bare int8 module of this runtime) is written as INC does: the tokenizer's
    files, `pytorch_model.bin` (the state dict plus the recipe under `best_configure`)
    and `config.json` with `architectures = [class name]` and `dtype = "int8"`.
    Unlike INC, the model's own config is not modified (a copy is written), a
    `tokenizer` of None is skipped, and a float model (pruned, distilled) is saved
    with its own `save_pretrained`. Load either with `OptimizedModel.from_pretrained`.
    Returns `output_dir`.
    """
    output_dir = os.fspath(output_dir)
    inner = bare_module(model)
    recipe = getattr(model, "q_config", None) or get_recipe(inner)
    os.makedirs(output_dir, exist_ok=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    if recipe is None:
        inner.save_pretrained(output_dir)  # type: ignore[operator]
        return output_dir
    config = getattr(inner, "config", None)
    if config is None or not hasattr(config, "save_pretrained"):
        raise TypeError(
            f"save_for_huggingface_upstream needs a Hugging Face model (with .config); "
            f"{type(inner).__name__} has none: use model.save(dir) instead"
        )
    state = inner.state_dict()
    if BEST_CONFIGURE in state:
        raise RuntimeError(f"the model has a parameter or buffer named {BEST_CONFIGURE!r}")
    state[BEST_CONFIGURE] = dict(recipe)
    torch.save(state, os.path.join(output_dir, WEIGHTS_NAME))
    config = copy.deepcopy(config)
    config.architectures = [type(inner).__name__]
    config.dtype = "int8"  # INC's load marker (INC 2.x sets the older name, torch_dtype)
    config.save_pretrained(output_dir)
    return output_dir


class OptimizedModel:
    """INC 2.x's `neural_compressor.utils.load_huggingface.OptimizedModel`: use `from_pretrained`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise OSError(
            f"{type(self).__name__} is built with "
            f"{type(self).__name__}.from_pretrained(model_name_or_path)"
        )

    @classmethod
    def from_pretrained(
        cls, model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> nn.Module:
        """The model saved in `model_name_or_path`, int8 when it was saved int8.

        Reads, in this order: this runtime's `save_pretrained` of an int8 model
        (`best_model.pt`), INC's `save_for_huggingface_upstream` format (config
        `dtype` int8 + `pytorch_model.bin`), a fake-quant model saved by
        `trainer.save_model()` after QAT (its config holds the recipe; the int8 model
        is rebuilt from its observers' scales), else a float model, loaded with
        `config.architectures[0]`'s `from_pretrained` (kwargs go there). The model
        class is looked up in `transformers` by name (never evaluated); pass
        `model_class=` when the config names none (folders written by other tools,
        or int8 folders saved before `architectures` was recorded). Checkpoints are read with `weights_only=True`.
        """
        path = os.fspath(model_name_or_path)
        config = kwargs.pop("config", None)
        if config is None:
            config = AutoConfig.from_pretrained(path, **_hub_kwargs(kwargs))
        model_class = kwargs.pop("model_class", None) or _model_class(config)
        local = os.path.isdir(path)
        if local and os.path.isfile(os.path.join(path, CHECKPOINT_NAME)):
            return load(path, _skeleton(model_class, config))
        if _marked_int8(config):
            if local:
                weights = os.path.join(path, WEIGHTS_NAME)
            else:
                from transformers.utils import cached_file

                weights = cached_file(path, WEIGHTS_NAME, **_hub_kwargs(kwargs))
            return load(weights, _skeleton(model_class, config))
        recipe = getattr(config, QAT_RECIPE_KEY, None)
        if isinstance(recipe, Mapping) and local:
            return _int8_from_fake_quant(path, model_class, config, recipe, kwargs)
        return model_class.from_pretrained(path, config=config, **kwargs)


_HUB_KEYS = ("cache_dir", "force_download", "revision", "token", "local_files_only", "subfolder")


def _hub_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in _HUB_KEYS if k in kwargs}


def _model_class(config: Any) -> type[nn.Module]:
    names = getattr(config, "architectures", None) or []
    if not names:
        raise ValueError(
            "the saved config names no architecture (config.architectures is empty, as for "
            "a model built from a config rather than from_pretrained): pass it, "
            "OptimizedModel.from_pretrained(path, model_class=BertForSequenceClassification)"
        )
    model_class = getattr(transformers, names[0], None)
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        raise ValueError(f"transformers has no model class {names[0]!r} (config.architectures)")
    return model_class


def _marked_int8(config: Any) -> bool:
    # transformers 5 names it dtype (reading torch_dtype there warns); 4.x torch_dtype
    name = "dtype" if hasattr(config, "dtype") else "torch_dtype"
    return getattr(config, name, None) in (torch.int8, "int8")


def _skeleton(model_class: type[nn.Module], config: Any) -> nn.Module:
    """A float model of the saved architecture (its weights are replaced by the load)."""
    config = copy.deepcopy(config)
    config.dtype = torch.float32  # the int8 marker is not a dtype to build with
    if not issubclass(model_class, nn.Module):  # an Auto class: AutoModelFor...
        return model_class.from_config(config)  # type: ignore[attr-defined]
    return model_class(config)


def _saved_state(folder: str) -> dict[str, torch.Tensor]:
    """Every tensor of a Hugging Face folder (safetensors, sharded or not, or pytorch_model.bin)."""
    from safetensors.torch import load_file

    index = os.path.join(folder, _SAFE_INDEX)
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(os.path.join(folder, shard)))
        return state
    if os.path.isfile(os.path.join(folder, _SAFE_WEIGHTS)):
        return load_file(os.path.join(folder, _SAFE_WEIGHTS))
    if os.path.isfile(os.path.join(folder, WEIGHTS_NAME)):
        return torch.load(os.path.join(folder, WEIGHTS_NAME), map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no {_SAFE_WEIGHTS}, {_SAFE_INDEX} or {WEIGHTS_NAME} in {folder}")


def _int8_from_fake_quant(
    folder: str,
    model_class: type[nn.Module],
    config: Any,
    recipe: Mapping[str, Any],
    kwargs: dict[str, Any],
) -> nn.Module:
    """Float weights through `from_pretrained`, then the QAT structure of `recipe` with the
    saved observer state, converted to int8."""
    if recipe.get("format") != RECIPE_FORMAT:
        raise ValueError(f"{folder}: {QAT_RECIPE_KEY} is not a neural_coder recipe")
    config = copy.deepcopy(config)
    delattr(config, QAT_RECIPE_KEY)
    with _quiet_transformers():  # the fake-quant entries are "unexpected keys" to it
        model = model_class.from_pretrained(folder, config=config, **kwargs)
    spec = dataclasses.replace(QuantSpec.of_recipe(recipe), approach=QAT, path="eager")
    backend = get_backend()
    float_keys = set(model.state_dict())
    prepared = backend.prepare_qat(model, spec)
    observer_keys = set(prepared.model.state_dict()) - float_keys
    saved = _saved_state(folder)
    result = prepared.model.load_state_dict(
        {k: v for k, v in saved.items() if k in observer_keys}, strict=False
    )
    lost = sorted(observer_keys & set(result.missing_keys))
    if lost:
        raise ValueError(
            f"{folder} lacks the fake-quant state of {len(lost)} entries (e.g. {lost[:3]}); "
            "it was not saved from the QAT model of this recipe"
        )
    return int8_device.keep_on_cpu(backend.convert(prepared, inplace=True))


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
