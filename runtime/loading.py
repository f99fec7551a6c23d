"""`load` for models saved by `Model.save`, and `structure_for` for a state dict a
script saved itself (`torch.save(model.state_dict(), path)`) from an int8 or a fake-quant
model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from . import int8_device
from .bf16 import BF16_RECIPE_MODULES, convert
from .model import BEST_CONFIGURE, CHECKPOINT_NAME, Model, strip_prefix, with_metadata
from .plain_tensors import state_dict_from_tensors

__all__ = ["load", "structure_for"]


def load(
    checkpoint_dir: str | os.PathLike[str] | Mapping[str, Any],
    model: nn.Module,
    history_cfg: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """Rebuild a model saved by `Model.save` / `CompressionManager.save` (INC's
    `neural_compressor.utils.pytorch.load`, spec 1.8).

    `checkpoint_dir` is the folder `save` wrote, the `best_model.pt` file itself, or
    an already loaded dict. `model` is a float model of the same architecture.
    Without `best_configure` the state dict is loaded into `model`, which is
    returned; with it, `neural_coder.runtime.quant.rebuild_quantized(model,
    recipe)` builds the int8 structure and the state dict is loaded into that (a bf16
    recipe, `{"precision": "bf16", "bf16_modules": [...]}` as `Model.save` writes for a
    `mix_precision.fit` result: a copy of `model` with those modules in bf16).
    INC's `history_cfg`, `dataloader`, `example_inputs` and custom-config kwargs
    are accepted and not needed: the recipe records everything. The int8 module is
    returned bare, as INC returns it, and bridged for GPU scripts: it stays on the CPU,
    where its kernels run (see `int8_device.keep_on_cpu`). Files are read
    with `torch.load(..., weights_only=True)`; INC 1.x's yaml format is refused.
    """
    del history_cfg, kwargs
    if isinstance(model, Model):
        model = model.model
    if isinstance(checkpoint_dir, Mapping):
        state = with_metadata(checkpoint_dir.items(), checkpoint_dir)
    else:
        path = os.path.abspath(os.path.expanduser(os.fspath(checkpoint_dir)))
        if os.path.isdir(path):
            file = os.path.join(path, CHECKPOINT_NAME)
            if not os.path.isfile(file):
                legacy = os.path.join(path, "best_configure.yaml")
                if os.path.isfile(legacy):
                    raise ValueError(
                        f"{path} holds an INC 1.x checkpoint (best_configure.yaml + "
                        "best_model_weights.pt), which this runtime cannot read; re-save "
                        "the model with INC 2.x or this runtime"
                    )
                raise FileNotFoundError(f"no {CHECKPOINT_NAME} in {path}")
            path = file
        elif not os.path.isfile(path):
            raise FileNotFoundError(f"no checkpoint at {path}")
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{path} does not hold a state dict")
        state = with_metadata(loaded.items(), loaded)
    recipe = state.pop(BEST_CONFIGURE, None)
    state = strip_prefix(state)
    if recipe is None:
        structure, state = structure_for(state, model)
    else:
        structure = _structure(model, recipe)
    structure.load_state_dict(state)
    return structure


def structure_for(
    state: Mapping[str, Any], model: nn.Module
) -> tuple[nn.Module, Mapping[str, Any]]:
    """The module that loads a state dict the script saved itself, and the state dict to
    load into it (neural-coder writes `net, state = structure_for(state, net)` before a
    script's own `net.load_state_dict(state)` after QAT):

    * a float model's state dict: `model` and `state` as they are;
    * an int8 model's (`torch.save(model.state_dict(), path)` after the conversion): the
      int8 structure rebuilt from `model` by the recipe the state dict carries in its
      metadata (`int8_device.attach_recipe`), and `state`;
    * a fake-quant model's, saved while QAT trained (the best epoch's checkpoint): the int8
      model QAT would have converted from it (`quant.int8_from_fake_quant`), and that
      model's own state dict, which the script's load then loads again unchanged.

    A state dict stored as plain tensors (`tensors_only`, for safetensors) is put back
    first. `model` is not modified."""
    if isinstance(model, Model):
        model = model.model
    state = strip_prefix(state_dict_from_tensors(state))
    fake_quant = _in_metadata(state, int8_device.FAKE_QUANT_ATTR)
    if fake_quant is not None:
        from .quant import int8_from_fake_quant

        int8 = int8_device.keep_on_cpu(int8_from_fake_quant(model, fake_quant, state))
        return int8, int8.state_dict()
    return _structure(model, _in_metadata(state, int8_device.RECIPE_ATTR)), state


def _structure(model: nn.Module, recipe: Mapping[str, Any] | None) -> nn.Module:
    if recipe is None:
        return model
    if BF16_RECIPE_MODULES in recipe:  # a bf16 model: the same modules converted (a copy)
        return convert(model, recipe[BF16_RECIPE_MODULES])
    from .quant import rebuild_quantized

    return int8_device.keep_on_cpu(rebuild_quantized(model, dict(recipe)))


def _in_metadata(state: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The recipe an int8 or fake-quant model's state dict carries for its root module."""
    root = getattr(state, "_metadata", {}).get("", {})
    recipe = root.get(key) if isinstance(root, Mapping) else None
    return recipe if isinstance(recipe, Mapping) else None
