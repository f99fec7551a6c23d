"""Multi-shot pipelines: training-time configs run one after another over the epochs
of one training run (INC's orchestration table, "Multi-shot" rows).

INC 1.x ran multi-shot pipelines with `experimental.Scheduler.append(...)`, each
component training on the previous one's output; INC 2.x's `prepare_compression`
only has one-shot lists. Here a pipeline is one training run split by epochs:

    confs = PipelineConfig([d_conf, p_conf, q_conf], epochs=args.epochs)
    compression_manager = prepare_compression(model, confs)

and the script's hooks stay the INC 2.x ones. Stage `i` owns the epochs
`[start_i, start_i + stage_epochs[i])` of the run, counted by the
`on_epoch_begin` calls (a loop that numbers its epochs from 1, or resumes at
epoch 5, still starts in the first stage); the last stage also owns any epoch
past the split. The split is `stage_epochs` when given, else `epochs` divided
evenly (the first stages take the remainder).

What each technique does outside its stage:

* distillation: before and after its epochs its hooks do not run, so the
  script's own loss is the one trained on; its feature hooks are removed when its
  stage ends. Its `distillation_steps` therefore count its epochs only.
* pruning: nothing before its stage (the weights are untouched). In its stage the
  schedule runs; its step counter starts at the stage's first optimizer step, so
  `start_step` / `end_step` count from there, and with `fit_pruning_schedule` (the
  default) `end_step` is fitted to 80 % of the stage's optimizer steps when the
  run's length is known (`steps_per_epoch`, else measured on the epochs before the
  stage). After its stage the masks stay applied after every optimizer step, so the
  weights it removed stay zero through the later stages (QAT included).
* quantization-aware training: the model is prepared at `on_train_begin` (the
  script re-binds `model = compression_manager.model` there, and the optimizer
  keeps its Parameters) with fake quantization and observers switched off; they
  are switched on at the first epoch of its stage, so the scales are learnt from
  the compressed model. It must be the last stage: the int8 conversion ends the run.

The summary has a `stages` list: each stage's epochs, optimizer steps and effect
(distillation steps and last loss, sparsity at the stage's end, int8 modules).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .compressor import Compressor
from .config import ConfigValueError

if TYPE_CHECKING:
    import torch

    from .model import Model

__all__ = ["PipelineConfig", "StageGate", "even_split", "fit_pipeline", "split_epochs"]

log = logging.getLogger(__name__)

#: the share of a pruning stage's optimizer steps spent pruning (the rest fine-tunes)
PRUNE_FRACTION = 0.8
#: per stage kind, the summary keys that show its effect
EFFECT_KEYS = {
    "distillation": ("distillation_steps", "distillation_loss_last"),
    "pruning": ("sparsity", "target_sparsity", "pruning_target_reached"),
    "qat": ("quantized_modules",),
}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def even_split(epochs: int, stages: int) -> list[int]:
    """`epochs` over `stages`, as evenly as possible; the first stages take the remainder."""
    base, extra = divmod(epochs, stages)
    return [base + (1 if i < extra else 0) for i in range(stages)]


def split_epochs(
    stages: int, epochs: int | None, stage_epochs: Sequence[int] | None
) -> list[int] | None:
    """Each stage's epochs: `stage_epochs` checked, else `epochs` split evenly; None when
    neither is known yet (see `fit_pipeline`)."""
    if stage_epochs is not None:
        counts = list(stage_epochs)
        if len(counts) != stages or not all(map(_positive_int, counts)):
            raise ConfigValueError(
                "PipelineConfig", "stage_epochs", counts, f"{stages} integers >= 1, one per stage"
            )
        return counts
    if epochs is None:
        return None
    if not _positive_int(epochs):
        raise ConfigValueError("PipelineConfig", "epochs", epochs, "an integer >= 1")
    if epochs < stages:
        raise ConfigValueError(
            "PipelineConfig",
            "epochs",
            epochs,
            f"at least one epoch per stage ({stages} stages); train longer or pass stage_epochs",
        )
    return even_split(epochs, stages)


class PipelineConfig:
    """Training-time configs run in stages over the epochs of one run (see the module doc).

    `stages`: the configs in order (a `WeightPruningConfig`,
    `QuantizationAwareTrainingConfig` or `DistillationConfig` each, at most one of a
    kind, QAT last). `epochs`: the run's epoch count, split evenly; `stage_epochs`:
    the split itself (one count >= 1 per stage, wins over `epochs`). Neither: the split
    is given later, before the first epoch, with `fit_pipeline(manager, epochs)` (a
    script that knows its epoch count only after the model is prepared).
    `steps_per_epoch`: optimizer steps per epoch, to fit a pruning stage's schedule
    before it has measured one. `fit_pruning_schedule=False` keeps the pruning
    config's own `end_step` (counted from the stage's first optimizer step).
    """

    def __init__(
        self,
        stages: Sequence[Any],
        epochs: int | None = None,
        stage_epochs: Sequence[int] | None = None,
        steps_per_epoch: int | None = None,
        fit_pruning_schedule: bool = True,
    ) -> None:
        stages = list(stages) if isinstance(stages, (list, tuple)) else [stages]
        if not stages:
            raise ConfigValueError(
                "PipelineConfig", "stages", stages, "a non-empty list of configs"
            )
        self.stages = stages
        self.epochs = epochs
        self.stage_epochs: list[int] | None = split_epochs(len(stages), epochs, stage_epochs)
        self.steps_per_epoch = _steps(steps_per_epoch)
        self.fit_pruning_schedule = fit_pruning_schedule

    @property
    def starts(self) -> list[int]:
        """The first epoch (0-based count) of each stage (all 0 while the split is unknown)."""
        starts, at = [], 0
        for count in self.stage_epochs or [0] * len(self.stages):
            starts.append(at)
            at += count
        return starts

    def __repr__(self) -> str:
        names = ">".join(type(s).__name__ for s in self.stages)
        return f"PipelineConfig({names}, stage_epochs={self.stage_epochs})"


def _steps(value: Any) -> int | None:
    # an empty loader when the script was written: measured instead
    return value if _positive_int(value) else None


def fit_pipeline(
    manager: Any,
    epochs: int | None = None,
    stage_epochs: Sequence[int] | None = None,
    steps_per_epoch: int | None = None,
) -> list[int]:
    """Give a pipeline its split (and the run's steps per epoch) once the script knows
    them, before the first `on_epoch_begin`. A split already given is kept unless a new
    one is passed. Returns each stage's epochs."""
    stages = getattr(manager, "stages", None)
    if not isinstance(stages, Stages):
        raise TypeError(
            "fit_pipeline needs the manager prepare_compression returned for a PipelineConfig"
        )
    return stages.set_split(epochs, stage_epochs, steps_per_epoch)


class StageGate(Compressor):
    """One stage's compressor, whose hooks run only while its stage does (and, for
    pruning, after it: the masks stay applied)."""

    def __init__(self, inner: Compressor, index: int, first_epoch: int, epochs: int) -> None:
        super().__init__(inner.conf)
        self.inner = inner
        self.kind = inner.kind
        self.index = index
        self.first_epoch = first_epoch
        self.planned_epochs = epochs
        self.state = "before"  # "before" -> "active" -> "after"
        self.epochs_run: list[int] = []
        self.optimizer_steps = 0
        self.effect: dict[str, Any] = {}
        self._dataloader: Any = None

    # -- life cycle -------------------------------------------------------------------
    def bind(self, wrapper: Model) -> None:
        super().bind(wrapper)
        self.inner.bind(wrapper)

    def on_model_replaced(self, old: torch.nn.Module, new: torch.nn.Module) -> None:
        self.inner.on_model_replaced(old, new)

    @property
    def _runs(self) -> bool:
        """Its hooks run: in its stage, and after it for pruning (masks kept)."""
        return self.state == "active" or (self.state == "after" and self.kind == "pruning")

    def start(self, steps_per_epoch: int | None, fit_schedule: bool) -> None:
        """The first epoch of this stage begins."""
        self.state = "active"
        if self.kind == "qat":
            _fake_quant(self._model(), enabled=True)
            return
        if self.kind == "pruning" and fit_schedule:
            self._fit_pruning(steps_per_epoch)
        self.inner.on_train_begin(self._dataloader)

    def stop(self) -> None:
        """The last epoch of this stage ended (the next stage begins)."""
        if self.state != "active":
            return
        self.state = "after"
        if self.kind == "distillation":
            self.inner.on_train_end()  # its feature hooks come off
        if self.kind == "pruning" and any(not p.finished for p in self.inner.pruners):
            log.warning(
                "pipeline: the pruning stage ended before its schedule did (end_step beyond "
                "the stage's %d optimizer steps); pruning goes on in the next stage",
                self.optimizer_steps,
            )
        self.effect = self._effect()

    def _fit_pruning(self, steps_per_epoch: int | None) -> None:
        from .integrations.hooks import fit_pruning_schedules

        if not steps_per_epoch:
            log.warning(
                "pipeline: the pruning stage starts before the run's steps per epoch are known; "
                "its schedule is the config's (pass steps_per_epoch to PipelineConfig)"
            )
            return
        end = int(PRUNE_FRACTION * steps_per_epoch * self.planned_epochs)
        holder = types.SimpleNamespace(callbacks_list=[self.inner])
        fitted = fit_pruning_schedules(holder, end)
        if fitted:
            log.info("pipeline: pruning ends %d optimizer steps into its stage", max(fitted))

    def _model(self) -> torch.nn.Module:
        assert self.wrapper is not None
        return self.wrapper.model

    def _effect(self) -> dict[str, Any]:
        summary = self.inner.summary()
        return {k: summary[k] for k in EFFECT_KEYS.get(self.kind, ()) if k in summary}

    def report(self) -> dict[str, Any]:
        """This stage's line in the summary."""
        row: dict[str, Any] = {"stage": self.kind, "planned_epochs": self.planned_epochs}
        if self.epochs_run:
            row["epochs"] = [self.epochs_run[0], self.epochs_run[-1]]
        else:
            row["epochs"] = None
            row["note"] = "the run ended before this stage began"
        row["optimizer_steps"] = self.optimizer_steps
        row.update(self.effect or self._effect())
        return row

    def finalize(self) -> None:
        if self.kind == "qat" and self.state == "before":
            # its observers never saw data: there are no scales to convert with
            log.warning(
                "pipeline: QAT never began, so the model is not converted to int8; it stays "
                "the prepared model with fake quantization off (a float model)"
            )
            return
        self.inner.finalize()
        if self.state == "active":
            self.effect = self._effect()

    def summary(self) -> dict[str, Any]:
        return self.inner.summary()

    # -- hooks ------------------------------------------------------------------------------
    def on_train_begin(self, dataloader: Any = None) -> None:
        self._dataloader = dataloader
        if self.kind == "qat":
            # prepared now, so `model = compression_manager.model` gets the prepared model;
            # it trains as float until its stage
            self.inner.on_train_begin(dataloader)
            if self.state != "active":
                _fake_quant(self._model(), enabled=False)
        elif self._runs:
            self.inner.on_train_begin(dataloader)

    def on_epoch_begin(self, epoch: int) -> None:
        if self._runs:
            self.inner.on_epoch_begin(epoch)

    def on_step_begin(self, batch_id: int) -> Any:
        return self.inner.on_step_begin(batch_id) if self._runs else None

    def on_after_compute_loss(
        self,
        input: Any,  # noqa: A002 - INC's parameter name
        student_output: Any,
        student_loss: torch.Tensor,
        teacher_output: Any = None,
    ) -> torch.Tensor | None:
        if not self._runs:
            return None
        return self.inner.on_after_compute_loss(input, student_output, student_loss, teacher_output)

    def on_before_optimizer_step(self) -> None:
        if self._runs:
            self.inner.on_before_optimizer_step()

    def on_after_optimizer_step(self) -> None:
        if self.state == "active":
            self.optimizer_steps += 1
        if self._runs:
            self.inner.on_after_optimizer_step()

    def on_step_end(self) -> Any:
        return self.inner.on_step_end() if self._runs else None

    def on_epoch_end(self) -> list[Any]:
        return self.inner.on_epoch_end() if self._runs else []

    def on_train_end(self) -> None:
        if self.state == "before":
            log.warning(
                "pipeline: the %s stage (from epoch %d) never began: the run had fewer epochs "
                "than the split (stage_epochs)",
                self.kind,
                self.first_epoch,
            )
        if self._runs or self.kind == "qat":
            self.inner.on_train_end()

    def on_before_eval(self) -> None:
        if self._runs:
            self.inner.on_before_eval()

    def on_after_eval(self) -> None:
        if self._runs:
            self.inner.on_after_eval()


def _fake_quant(model: torch.nn.Module, enabled: bool) -> None:
    """Fake quantization and observers of a QAT-prepared model on or off."""
    from torch.ao import quantization as tq

    if enabled:
        model.apply(tq.enable_observer)
        model.apply(tq.enable_fake_quant)
    else:
        model.apply(tq.disable_fake_quant)
        model.apply(tq.disable_observer)


class Stages:
    """Moves the gates from stage to stage at each `on_epoch_begin` (counted calls)."""

    def __init__(self, pipeline: PipelineConfig, gates: list[StageGate]) -> None:
        self.pipeline = pipeline
        self.gates = gates
        self.epochs_begun = 0
        self.steps_seen = 0  # optimizer steps, to measure the steps per epoch
        self.current = -1

    def stage_of(self, epoch_count: int) -> int:
        index = 0
        for i, gate in enumerate(self.gates):
            if epoch_count >= gate.first_epoch:
                index = i
        return index

    def set_split(
        self,
        epochs: int | None = None,
        stage_epochs: Sequence[int] | None = None,
        steps_per_epoch: int | None = None,
    ) -> list[int]:
        pipeline = self.pipeline
        if self.epochs_begun:
            raise RuntimeError("fit_pipeline after the first epoch began: the split is fixed")
        counts = split_epochs(len(self.gates), epochs, stage_epochs)
        if counts is not None:
            pipeline.epochs, pipeline.stage_epochs = epochs, counts
        if steps_per_epoch is not None:
            pipeline.steps_per_epoch = _steps(steps_per_epoch)
        for gate, first, planned in zip(
            self.gates, pipeline.starts, pipeline.stage_epochs or [0] * len(self.gates)
        ):
            gate.first_epoch, gate.planned_epochs = first, planned
        return list(pipeline.stage_epochs or [])

    def epoch_begin(self) -> None:
        if self.pipeline.stage_epochs is None:
            raise ConfigValueError(
                "PipelineConfig",
                "epochs",
                None,
                "the split before the first epoch: PipelineConfig(epochs=...) or "
                "stage_epochs=[...], or fit_pipeline(compression_manager, epochs) before the "
                "epoch loop",
            )
        count = self.epochs_begun
        self.epochs_begun += 1
        index = self.stage_of(count)
        if index != self.current:
            steps = self.pipeline.steps_per_epoch
            if steps is None and count > 0 and self.steps_seen:
                steps = max(1, self.steps_seen // count)
            for gate in self.gates[:index]:
                gate.stop()
            self.gates[index].start(steps, self.pipeline.fit_pruning_schedule)
            log.info(
                "pipeline: stage %d/%d (%s) begins at epoch %d",
                index + 1,
                len(self.gates),
                self.gates[index].kind,
                count,
            )
            self.current = index
        self.gates[index].epochs_run.append(count)

    def optimizer_step(self) -> None:
        self.steps_seen += 1

    def begin_without_epochs(self) -> None:
        """A loop that never calls `on_epoch_begin`: the first stage runs the whole run."""
        if self.current < 0:
            log.warning(
                "pipeline: on_epoch_begin was never called, so the run is not split into "
                "stages: only the first stage (%s) runs",
                self.gates[0].kind,
            )
            self.epoch_begin()

    def report(self) -> list[dict[str, Any]]:
        return [gate.report() for gate in self.gates]
