"""PyTorch Lightning integration: post-training quantization and bf16 after `Trainer.fit`.

The shapes `neural-coder` generates::

    trainer.fit(model, train_loader, val_loader)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(approach="static", ...),
        calib_dataloader=lightning_calib_dataloader(trainer),
        eval_func=lightning_eval_func(trainer, "test", dataloaders=test_loader),
    )
    model = quantized_lightning_module(quantized_model, model)
    trainer.test(model, dataloaders=test_loader)

(`approach="dynamic"` needs no `calib_dataloader`; bf16 is `mix_precision.fit(model,
MixedPrecisionConfig(example_inputs=lightning_example_inputs(trainer), ...),
eval_func=...)`.) Every path keeps the
script's LightningModule class, its `test_step`, `log` and hooks intact, so the
Trainer can validate, test and predict with the result: dynamic quantization and
bf16 swap modules inside a copy of the module, and `quantization.fit` quantizes a
LightningModule statically child by child inside a copy (each child an FX graph
where it traces) instead of tracing it whole into an FX GraphModule, which is no
LightningModule.

`lightning_calib_dataloader` hands calibration the loader the Trainer validated
with during fit (else the one it trained on): the script's own loaders, its
datamodule's or the module's `val_dataloader()`; `lightning_example_inputs` the
inputs of its first batch, on which bf16 measures its speed-up. Calibration and
the measurement call the module itself, `model(x)` on a batch's inputs, so the
LightningModule's `forward` must run its network.

`lightning_eval_func` runs `trainer.validate` / `trainer.test` on each candidate
(as the script calls it afterwards) and picks the metric from the returned dict at
run time: the first key that names an accuracy-like metric, else the first loss
(lower is better; `fit` turns its accuracy criterion to match).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ..quant import get_backend
from ..quantization import split_batch
from .results import LOWER_IS_BETTER, bare_module

__all__ = [
    "lightning_calib_dataloader",
    "lightning_eval_func",
    "lightning_example_inputs",
    "quantized_lightning_module",
]

log = logging.getLogger("neural_coder.runtime")


class _LightningEvaluation:
    """`eval_func(candidate) -> float` over `trainer.<method>(candidate, ...)`."""

    def __init__(self, trainer: Any, method: str, kwargs: dict[str, Any]) -> None:
        if method not in ("validate", "test"):
            raise ValueError(f"method must be 'validate' or 'test', not {method!r}")
        self.trainer = trainer
        self.method = method
        self.kwargs = {**kwargs, "verbose": False}
        self.metric_key: str | None = None  # the key found in the first evaluation
        self.higher_is_better: bool | None = None

    def __call__(self, candidate: Any) -> float:
        module = bare_module(candidate)
        _check_int8_device(self.trainer, module)
        results = getattr(self.trainer, self.method)(module, **self.kwargs)
        metrics: dict[str, Any] = {}
        for result in results or []:  # one dict per dataloader: the first holding a key
            for key, value in result.items():
                metrics.setdefault(key, value)
        if self.metric_key is None:
            self.metric_key = self._pick(metrics)
            self.higher_is_better = not _lower_is_better(self.metric_key)
            log.info(
                "trainer.%s(): tuning on %r (%s is better)",
                self.method,
                self.metric_key,
                "higher" if self.higher_is_better else "lower",
            )
        elif self.metric_key not in metrics:
            raise KeyError(
                f"trainer.{self.method}() logged no {self.metric_key!r} this time (it did for "
                f"the fp32 model); its metrics are {sorted(metrics)}"
            )
        return float(metrics[self.metric_key])

    def _pick(self, metrics: dict[str, Any]) -> str:
        if not metrics:
            step = "validation_step" if self.method == "validate" else "test_step"
            raise KeyError(
                f"trainer.{self.method}() returned no metrics: log one in the module's "
                f"{step} (self.log('{self.method}_acc', ...)) to tune on it"
            )
        keys = list(metrics)
        better = [k for k in keys if not _lower_is_better(k)]
        return better[0] if better else keys[0]


def _check_int8_device(trainer: Any, module: nn.Module) -> None:
    """torch.ao's int8 kernels run on the CPU only: a Trainer on a GPU would move the int8
    candidate there and fail inside its test loop. Failing here makes it a failed trial
    with the reason, and `fit` keeps the fp32 module when no candidate can run."""
    device = getattr(getattr(trainer, "strategy", None), "root_device", None)
    if getattr(device, "type", "cpu") == "cpu" or not get_backend().count_quantized_modules(module):
        return
    raise RuntimeError(
        f"the Trainer runs on {device}, but int8 modules run on the CPU only: build the Trainer "
        "that tests the quantized module with accelerator='cpu', or use bf16"
    )


def _lower_is_better(key: str) -> bool:
    return any(word in key.lower() for word in LOWER_IS_BETTER)


def lightning_eval_func(
    trainer: Any, method: str = "validate", **kwargs: Any
) -> Callable[[Any], float]:
    """`eval_func(candidate) -> float` for `quantization.fit`: `trainer.<method>(candidate,
    **kwargs)` (`method` "validate" or "test", `kwargs` the script's own `dataloaders=` /
    `datamodule=`) and the metric picked from its result at run time (see the module
    docstring); `higher_is_better` follows the metric's name."""
    return _LightningEvaluation(trainer, method, kwargs)


def lightning_calib_dataloader(trainer: Any) -> Any:
    """The dataloader `trainer.fit` validated with (the first, when there are several), else
    the one it trained on: the calibration data of static quantization after the fit."""
    for attribute in ("val_dataloaders", "train_dataloader"):
        try:
            loader = getattr(trainer, attribute, None)
        except Exception:  # noqa: BLE001 - older Lightning raises when it is not loaded
            loader = None
        loader = _first_loader(loader)
        if loader is not None:
            return loader
    raise ValueError(
        "the Trainer holds no validation or training dataloader to calibrate with: call "
        "trainer.fit(model, train_loader, val_loader) (or with a datamodule) before quantizing"
    )


def lightning_example_inputs(trainer: Any) -> Any:
    """The inputs of the first batch of `lightning_calib_dataloader(trainer)`: what bf16
    measures its speed-up on (`MixedPrecisionConfig(example_inputs=...)`), through the
    module's `forward`, whichever submodule its `test_step` calls."""
    for batch in lightning_calib_dataloader(trainer):
        return split_batch(batch)[0]
    raise ValueError("the Trainer's dataloader yielded no batch to measure bf16 on")


def _first_loader(loaders: Any) -> Any:
    """One dataloader out of what a Trainer holds: a loader, a list / dict of them, or a
    CombinedLoader (its `iterables` in Lightning 2, `loaders` before)."""
    for _ in range(3):  # CombinedLoader -> list / dict -> loader
        if isinstance(loaders, Mapping):
            loaders = next(iter(loaders.values()), None)
        elif isinstance(loaders, list | tuple):
            loaders = loaders[0] if loaders else None
        elif hasattr(loaders, "iterables") or hasattr(loaders, "loaders"):
            loaders = getattr(loaders, "iterables", None) or getattr(loaders, "loaders", None)
        else:
            break
    return loaders if hasattr(loaders, "__iter__") else None


def quantized_lightning_module(quantized_model: Any, fp32_model: nn.Module) -> nn.Module:
    """The LightningModule to go on with: the int8 (or bf16) module inside `fit`'s result,
    or `fp32_model` (with a warning) when `fit` returned None."""
    if quantized_model is None:
        log.warning(
            "fit returned no model (see the lines above for why): the script goes on "
            "with the fp32 module"
        )
        return fp32_model
    module = bare_module(quantized_model)
    if type(module) is not type(fp32_model):
        raise TypeError(
            f"the converted model is a {type(module).__name__}, not the script's "
            f"{type(fp32_model).__name__}: the Trainer cannot evaluate it"
        )
    return module
