"""`prepare_compression`, `CompressionManager` and `CallBacks` (INC 2.x `neural_compressor.training`).

One `Model` wrapper and one `Compressor` per config (see `compressor.py`), run in
the order the configs were listed (spec 1.2 / 1.3). Deliberate differences from
INC, documented where they happen:

* `on_after_compute_loss` always returns a loss: the chained one when a
  compressor returned a loss (each compressor receives the loss the previous
  one returned), the user's `student_loss` unchanged when none did. INC returns
  `[]` without distillation and a list when several callbacks return losses
  (quirk 9.1), so `loss = cm.callbacks.on_after_compute_loss(...)` was only safe
  with distillation; here it is always safe.
* `on_train_end` runs every compressor's `on_train_end` in list order, then
  every `finalize()` in list order (QAT converts to int8 there), then builds and
  emits the run summary (`summary.py`). A second `on_train_end` without a new
  `on_train_begin` does nothing.
* Two configs of the same kind, an empty list and configs that are not training
  configs are refused with `ConfigValueError`. INC silently lets the last one win.
* The manager itself has the hook methods too (`cm.on_train_begin()`), as spec 7.5
  allows: some upstream examples call them there.
* Each config is read by its own attributes (quirk 9.6: INC reads the QAT
  backend from the list object, so it is always the default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .compressor import Compressor
from .config import (
    ConfigValueError,
    DistillationConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from .distillation.compressor import ModelInputs
from .model import Model
from .pipeline import PipelineConfig, StageGate, Stages
from .summary import build_summary, emit_summary, state_dict_size

if TYPE_CHECKING:
    import torch

__all__ = [
    "ModelInputs",
    "CallBacks",
    "PipelineConfig",
    "CompressionManager",
    "DistillationConfig",
    "QuantizationAwareTrainingConfig",
    "WeightPruningConfig",
    "compressor_class",
    "prepare_compression",
]

log = logging.getLogger(__name__)


def _pruning() -> type[Compressor]:
    from .pruning import PruningCompressor

    return PruningCompressor


def _qat() -> type[Compressor]:
    from .quant.qat import QATCompressor

    return QATCompressor


def _distillation() -> type[Compressor]:
    from .distillation import DistillationCompressor

    return DistillationCompressor


def _recipe() -> type[Compressor]:
    from .recipes import RecipeCompressor

    return RecipeCompressor


#: config class name -> (kind, loader of the compressor class). Matching by class
#: name (through the MRO) also accepts INC's own config objects, which the
#: compressors read through attributes only.
_REGISTRY: dict[str, tuple[str, Callable[[], type[Compressor]]]] = {
    "WeightPruningConfig": ("pruning", _pruning),
    "QuantizationAwareTrainingConfig": ("quantization", _qat),
    "DistillationConfig": ("distillation", _distillation),
    "RecipeConfig": ("recipe", _recipe),
}
_NOT_TRAINING = {
    "PostTrainingQuantConfig": "use neural_coder.runtime.quantization.fit(model, conf, ...)",
    "MixedPrecisionConfig": "use neural_coder.runtime.mix_precision.fit(model, conf, ...)",
    "BenchmarkConfig": "use neural_coder.runtime.benchmark.fit(model, conf, ...)",
}


def _with_recipe(conf_list: list[Any], recipe: Any) -> list[Any]:
    """A recipe given as a mapping in `confs`, or as `recipe=` (a path, a mapping or a
    `RecipeConfig`), becomes a `RecipeConfig` (see `recipes/`)."""
    from .recipes import RecipeConfig, is_recipe_mapping

    out = [RecipeConfig(c) if is_recipe_mapping(c) else c for c in conf_list if c is not None]
    if recipe is not None:
        out.append(recipe if isinstance(recipe, RecipeConfig) else RecipeConfig(recipe))
    return out


def _lookup(conf: Any) -> tuple[str, Callable[[], type[Compressor]]]:
    for klass in type(conf).__mro__:
        entry = _REGISTRY.get(klass.__name__)
        if entry is not None:
            return entry
    hint = _NOT_TRAINING.get(type(conf).__name__)
    allowed = (
        "a WeightPruningConfig, QuantizationAwareTrainingConfig, DistillationConfig or RecipeConfig"
    )
    if hint:
        allowed += f" ({type(conf).__name__} is not a training-time config: {hint})"
    raise ConfigValueError("prepare_compression", "confs", conf, allowed)


def compressor_class(conf: Any) -> type[Compressor]:
    """The `Compressor` class that carries out `conf` (imported on first use)."""
    return _lookup(conf)[1]()


@dataclass
class CompressionConfigs:
    """`CompressionManager.conf`: the configs by kind (INC's internal `_Config`)."""

    quantization: Any = None
    pruning: Any = None
    distillation: Any = None
    recipe: Any = None


def _overriding(compressors: Sequence[Compressor], hook: str) -> tuple[Compressor, ...]:
    """The compressors whose class overrides `hook`: the per-step hooks skip the others,
    whose `hook` is the base class's no-op (a small model's step is a few hundred
    microseconds; every call counts)."""
    base = getattr(Compressor, hook)
    return tuple(c for c in compressors if getattr(type(c), hook) is not base)


class CallBacks:
    """The hooks at `compression_manager.callbacks` (spec 1.3), dispatched to every
    compressor in list order."""

    def __init__(
        self,
        compressors: Sequence[Compressor],
        on_finished: Callable[[], None] | None = None,
        stages: Stages | None = None,
    ) -> None:
        if not compressors:
            raise ValueError("CallBacks needs at least one compressor")
        self.compressors: list[Compressor] = list(compressors)
        self._step_begin = _overriding(self.compressors, "on_step_begin")
        self._after_loss = _overriding(self.compressors, "on_after_compute_loss")
        self._before_step = _overriding(self.compressors, "on_before_optimizer_step")
        self._after_step = _overriding(self.compressors, "on_after_optimizer_step")
        self._step_end = _overriding(self.compressors, "on_step_end")
        #: a multi-shot pipeline's stage switch (`pipeline.py`), None in one shot
        self.stages = stages
        self._on_finished = on_finished
        self._in_training = False
        self._finished = False

    @property
    def callbacks_list(self) -> list[Compressor]:
        """INC's name for the per-technique objects."""
        return self.compressors

    def on_train_begin(self, dataloader: Any = None) -> None:
        """Every compressor's `on_train_begin`. Compressors make a repeated call
        harmless (QAT does not prepare twice)."""
        for c in self.compressors:
            c.on_train_begin(dataloader)
        self._in_training = True
        self._finished = False

    def on_epoch_begin(self, epoch: int) -> None:
        if self.stages is not None:
            self.stages.epoch_begin()
        for c in self.compressors:
            c.on_epoch_begin(epoch)

    def on_step_begin(self, batch_id: int) -> list[Any]:
        """The non-None results, in list order."""
        if self.stages is not None and self.stages.current < 0:
            self.stages.begin_without_epochs()
        # plain loops, not comprehensions: a comprehension is one more frame per call
        results = []
        for c in self._step_begin:
            r = c.on_step_begin(batch_id)
            if r is not None:
                results.append(r)
        return results

    def on_after_compute_loss(
        self,
        input: Any,  # noqa: A002 - INC's parameter name
        student_output: Any,
        student_loss: torch.Tensor,
        teacher_output: Any = None,
    ) -> torch.Tensor:
        """The loss to call `backward()` on: each compressor receives the loss the
        previous one returned (or the user's loss); `student_loss` itself when no
        compressor returned one. INC returns `[]` or a list instead (quirk 9.1).
        A loss computed without gradients (an evaluation pass through the same step
        code: `run_epoch(..., train=False)` under `torch.set_grad_enabled(False)`) is
        returned as it is: nothing trains on it, so no teacher runs for it."""
        if (
            not self._after_loss
            or not torch.is_grad_enabled()
            or (
                isinstance(student_loss, torch.Tensor)
                and not student_loss.requires_grad
                and isinstance(student_output, torch.Tensor)
                and not student_output.requires_grad
            )
        ):
            return student_loss
        loss = student_loss
        for c in self._after_loss:
            result = c.on_after_compute_loss(input, student_output, loss, teacher_output)
            if result is not None:
                loss = result
        return loss

    def on_before_optimizer_step(self) -> None:
        for c in self._before_step:
            c.on_before_optimizer_step()

    def on_after_optimizer_step(self) -> None:
        if self.stages is not None:
            self.stages.optimizer_step()
        for c in self._after_step:
            c.on_after_optimizer_step()

    def on_step_end(self) -> list[Any]:
        """The non-None results, in list order."""
        results = []
        for c in self._step_end:
            r = c.on_step_end()
            if r is not None:
                results.append(r)
        return results

    def on_epoch_end(self) -> list[Any]:
        """The concatenation of every compressor's result list."""
        results: list[Any] = []
        for c in self.compressors:
            out = c.on_epoch_end()
            if out:
                results.extend(out)
        return results

    def on_before_eval(self) -> None:
        for c in self.compressors:
            c.on_before_eval()

    def on_after_eval(self) -> None:
        for c in self.compressors:
            c.on_after_eval()

    def on_train_end(self) -> None:
        """Every `on_train_end`, then every `finalize()`, then the summary; once."""
        if self._finished:
            log.debug("on_train_end called again without on_train_begin: nothing to do")
            return
        if not self._in_training:
            log.warning(
                "on_train_end was called without on_train_begin; compressors that prepare "
                "the model in on_train_begin (QAT) did nothing"
            )
        for c in self.compressors:
            c.on_train_end()
        for c in self.compressors:
            c.finalize()
        self._finished = True
        self._in_training = False
        log.info("Training finished!")
        if self._on_finished is not None:
            self._on_finished()


class CompressionManager:
    """Training-time compression of one model with one or more configs (spec 1.1 / 1.2).

    Attributes: `model` (the `Model` wrapper), `callbacks` (`CallBacks`), `conf`
    (the configs by kind), `fp32_model` (the module given, the same object, not a
    copy), `compressors` (in list order) and, after `on_train_end`, `summary`.
    """

    def __init__(self, model: nn.Module, confs: Any, **kwargs: Any) -> None:
        if isinstance(model, Model):
            model = model.model
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"prepare_compression needs a torch.nn.Module, got {type(model).__name__}"
            )
        #: a multi-shot pipeline (`PipelineConfig`): its stages run one after another
        self.pipeline: PipelineConfig | None = None
        if isinstance(confs, PipelineConfig):
            self.pipeline, confs = confs, confs.stages
        conf_list = list(confs) if isinstance(confs, (list, tuple)) else [confs]
        conf_list = _with_recipe(conf_list, kwargs.pop("recipe", None))
        in_place = kwargs.pop("in_place", False)
        if not isinstance(in_place, bool):
            raise ConfigValueError("prepare_compression", "in_place", in_place, "True or False")
        if not conf_list:
            raise ConfigValueError(
                "prepare_compression", "confs", confs, "one config or a non-empty list of configs"
            )
        kinds: dict[str, Any] = {}
        loaders = []
        for conf in conf_list:
            kind, loader = _lookup(conf)
            if kind in kinds:
                raise ConfigValueError(
                    "prepare_compression",
                    "confs",
                    [type(c).__name__ for c in conf_list],
                    f"at most one config of each kind (two {type(conf).__name__}s given)",
                )
            kinds[kind] = conf
            loaders.append(loader)
        if self.pipeline is not None and "quantization" in kinds and kind != "quantization":
            raise ConfigValueError(
                "PipelineConfig",
                "stages",
                [type(c).__name__ for c in conf_list],
                "quantization-aware training as the last stage (its int8 conversion ends the run)",
            )
        self.conf = CompressionConfigs(**kinds)
        self.kwargs = kwargs
        self.fp32_model: nn.Module = model
        self._size_before = state_dict_size(model)
        # the wrapper's framework follows the quantization/pruning config (spec 1.2)
        wrapper_conf = kinds.get("quantization", kinds.get("pruning"))
        self.model: Model = Model(model, conf=wrapper_conf)
        self.compressors: list[Compressor] = []
        starts = self.pipeline.starts if self.pipeline is not None else []
        for index, (conf, loader) in enumerate(zip(conf_list, loaders)):
            compressor = loader()(conf)
            if self.pipeline is not None:
                planned = (self.pipeline.stage_epochs or [0] * len(conf_list))[index]
                compressor = StageGate(compressor, index, starts[index], planned)
            compressor.bind(self.model)
            self.model.add_listener(compressor)
            self.compressors.append(compressor)
            inner = getattr(compressor, "inner", compressor)  # a pipeline stage's compressor
            if in_place and hasattr(inner, "in_place"):
                inner.in_place = True
        self.stages = (
            Stages(self.pipeline, self.compressors)  # type: ignore[arg-type]
            if self.pipeline is not None
            else None
        )
        self.callbacks = CallBacks(
            self.compressors, on_finished=self._emit_summary, stages=self.stages
        )
        self.summary: dict[str, Any] | None = None

    # -- INC API ----------------------------------------------------------------
    @property
    def adaptor(self) -> Compressor | None:
        """The QAT compressor (INC exposes its framework adaptor here)."""
        found = next((c for c in self.compressors if c.conf is self.conf.quantization), None)
        return getattr(found, "inner", found)  # a pipeline stage's compressor

    def save(self, root: str | None = None) -> str:
        """`self.model.save(root)`: `root/best_model.pt` (see `Model.save`)."""
        return self.model.save(root)

    def shrink(self, example_inputs: Any = None) -> dict[str, Any]:
        """Remove the channels pruning made useless, in place (`pruning/shrink.py`): the
        model gets fewer parameters and computes what the masked model computed.
        `WeightPruningConfig(shrink=True)` does this at `on_train_end`; call this to do it
        yourself (`example_inputs` default to the first batch seen in training).
        Returns the summary keys (parameters and latency before and after)."""
        pruning = next((c for c in self.compressors if c.kind == "pruning"), None)
        if pruning is None:
            raise ConfigValueError(
                "CompressionManager.shrink", "confs", self.conf, "a WeightPruningConfig"
            )
        pruning = getattr(pruning, "inner", pruning)  # a pipeline stage's compressor
        result = pruning.shrink(example_inputs)  # type: ignore[attr-defined]
        if self.summary is not None:
            self.summary.update(result)
        return result

    def track_copy(self, copy: Any) -> None:
        """Keep `copy`, a moving average of the model's weights that the script evaluates
        or saves, compressed as the model is: timm's `ModelEma*`, YOLOv5's `ModelEMA`,
        torch's `AveragedModel` (the object or the module it holds), a deep copy of the
        model, diffusers' `EMAModel` and torch_ema (tensors in `model.parameters()`
        order, pruning only). Pruning multiplies its weights of the same name by the
        model's masks at the end of every step and epoch and at `on_train_end`
        (`pruning/copies.py`). Quantization-aware training converts its fake-quant module
        to int8 with the model at `on_train_end` and puts it back where the object keeps
        it (`ema.ema`, `model_ema.module`); the copy must be built after `on_train_begin`
        from the prepared model (`quant/copies.py`); for a bare copy
        (`ema = deepcopy(model)`) rebind it with `ema = cm.converted_copy(ema)`.
        None (no copy on this rank) does nothing. Not part of INC 2.x."""
        inner = [getattr(c, "inner", c) for c in self.compressors]  # pipeline stages
        acting = [c for c in inner if c.kind in ("pruning", "qat")]
        if not acting:
            log.warning(
                "track_copy: no pruning or quantization-aware training config, so nothing "
                "is applied to the copy"
            )
        if copy is None:
            return
        for compressor in acting:
            compressor.track_copy(copy)  # type: ignore[attr-defined]

    def converted_copy(self, copy: Any) -> Any:
        """After `on_train_end`: what the script should hold for a copy given to
        `track_copy`: the int8 module for a bare copy of the model (`ema =
        cm.converted_copy(ema)`), the object itself when the int8 module was put back into
        it; `copy` as it is without quantization-aware training (or for None). Not part
        of INC 2.x."""
        qat = next(
            (c for c in (getattr(c, "inner", c) for c in self.compressors) if c.kind == "qat"), None
        )
        if qat is None or copy is None:
            return copy
        return qat.copies.converted(copy)  # type: ignore[attr-defined]

    def _emit_summary(self) -> None:
        extra: dict[str, Any] = {
            "techniques": [c.kind or type(c).__name__ for c in self.compressors]
        }
        for c in self.compressors:
            extra.update(c.summary())
        if self.stages is not None:
            extra["techniques"] = ">".join(extra["techniques"])
            extra["stages"] = self.stages.report()
        self.summary = build_summary(self.model.model, self._size_before, extra)
        emit_summary(self.summary)

    # -- manager-level aliases of the hooks (spec 7.5) --------------------------
    def on_train_begin(self, dataloader: Any = None) -> None:
        self.callbacks.on_train_begin(dataloader)

    def on_epoch_begin(self, epoch: int) -> None:
        self.callbacks.on_epoch_begin(epoch)

    def on_step_begin(self, batch_id: int) -> list[Any]:
        return self.callbacks.on_step_begin(batch_id)

    def on_after_compute_loss(
        self,
        input: Any,  # noqa: A002 - INC's parameter name
        student_output: Any,
        student_loss: torch.Tensor,
        teacher_output: Any = None,
    ) -> torch.Tensor:
        return self.callbacks.on_after_compute_loss(
            input, student_output, student_loss, teacher_output
        )

    def on_before_optimizer_step(self) -> None:
        self.callbacks.on_before_optimizer_step()

    def on_after_optimizer_step(self) -> None:
        self.callbacks.on_after_optimizer_step()

    def on_step_end(self) -> list[Any]:
        return self.callbacks.on_step_end()

    def on_epoch_end(self) -> list[Any]:
        return self.callbacks.on_epoch_end()

    def on_before_eval(self) -> None:
        self.callbacks.on_before_eval()

    def on_after_eval(self) -> None:
        self.callbacks.on_after_eval()

    def on_train_end(self) -> None:
        self.callbacks.on_train_end()


def prepare_compression(model: nn.Module, confs: Any, **kwargs: Any) -> CompressionManager:
    """`CompressionManager(model, confs, **kwargs)`: one config or a list, run in
    one shot in list order, or a `PipelineConfig`, run in stages (multi-shot).
    `in_place=True` (this runtime only, not INC): QAT prepares and converts `model` itself
    (the eager per-module path, int8 modules bridged to the CPU), so code that holds
    `model` (a trainer class built around it) goes on with the int8 model after
    `on_train_end`; pruning and distillation change the module in place anyway."""
    return CompressionManager(model, confs, **kwargs)
