"""From facts and the requested approach to edits, or a refusal with reasons."""

from __future__ import annotations

from neural_coder.analysis import Facts
from neural_coder.options import OptimizeOptions

from .base import Plan
from .lightning import LightningPlanner
from .loop import LoopPlanner
from .post_training import PostTrainingPlanner
from .trainer import TrainerPlanner

__all__ = ["Plan", "make_plan"]


def make_plan(facts: Facts, options: OptimizeOptions, line_length: int = 88) -> Plan:
    lightning_runs = facts.lightning is not None and facts.loop is None and not facts.trainers
    if lightning_runs:
        planner: type = LightningPlanner
    elif options.post_training:
        planner = PostTrainingPlanner
    elif facts.loop is None and facts.trainers:
        planner = TrainerPlanner
    else:
        planner = LoopPlanner
    return planner(facts, options, line_length).build()
