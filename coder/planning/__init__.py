"""From facts and the requested approach to edits, or a refusal with reasons."""

from __future__ import annotations

from dataclasses import replace

from neural_coder.analysis import Facts
from neural_coder.options import OptimizeOptions

from .base import BasePlanner, Plan
from .int8_reloads import int8_folder_reloads
from .lightning import LightningPlanner
from .lightning_post_training import LightningPostTrainingPlanner
from .loop import LoopPlanner
from .post_training import PostTrainingPlanner
from .safetensors_files import safetensors_edits
from .sharded import check_sharding
from .trainer import TrainerPlanner

__all__ = ["Plan", "make_plan"]


def make_plan(facts: Facts, options: OptimizeOptions, line_length: int = 88) -> Plan:
    sharded = (
        None
        if options.approach == ("benchmark",)
        else check_sharding(facts.index, "+".join(options.approach))
    )
    if options.then_fit is not None and not _lightning_runs(facts):
        plan = _train_then_fit(facts, options, line_length)
    else:
        plan = _planner(facts, options)(facts, options, line_length).build()
    if sharded is not None:
        plan.warnings.append(sharded)
    reloads, placed = int8_folder_reloads(facts.index, options, plan.edits, facts.trainers)
    plan.edits += reloads
    plan.placed += placed
    saves_and_loads, placed, warnings = safetensors_edits(facts.index, options, plan.edits)
    plan.edits += saves_and_loads
    plan.placed += placed
    plan.warnings += warnings
    return plan


def _lightning_runs(facts: Facts) -> bool:
    return facts.lightning is not None and facts.loop is None and not facts.trainers


def _planner(facts: Facts, options: OptimizeOptions) -> type[BasePlanner]:
    if _lightning_runs(facts) and options.post_training:
        planner: type = LightningPostTrainingPlanner
    elif _lightning_runs(facts):  # it refuses what it cannot do (pipelines)
        planner = LightningPlanner
    elif options.post_training:
        planner = PostTrainingPlanner
    elif facts.loop is None and facts.trainers:
        planner = TrainerPlanner
    else:
        planner = LoopPlanner
    return planner


def _train_then_fit(facts: Facts, options: OptimizeOptions, line_length: int) -> Plan:
    """A pipeline that ends with a post-training approach: the training stages' hooks,
    then the fit on the trained model (placed after training, as for a script that
    trains and is quantized), whose result is the model the script goes on with."""
    assert options.then_fit is not None
    training_options = replace(options, then_fit=None)
    training = _planner(facts, training_options)(facts, training_options, line_length)
    plan = training.build()
    fit_options = replace(
        options, approach=(options.then_fit,), staged=False, stage_epochs=None, then_fit=None
    )
    fit = PostTrainingPlanner(facts, fit_options, line_length)
    fit.taken |= training.taken  # names the training hooks took
    fit.last_epoch_fit = False  # the stages' on_epoch_end / on_train_end run after the loop body
    fitted = fit.build()
    plan.edits += fitted.edits
    plan.placed += [f"then {options.then_fit}: {line}" for line in fitted.placed]
    plan.warnings += fitted.warnings
    return plan
