"""From facts and the requested approach to edits, or a refusal with reasons."""

from __future__ import annotations

from neural_coder.analysis import Facts
from neural_coder.options import OptimizeOptions

from .base import Plan
from .loop import LoopPlanner
from .post_training import PostTrainingPlanner
from .trainer import TrainerPlanner

__all__ = ["Plan", "make_plan"]


def make_plan(facts: Facts, options: OptimizeOptions, line_length: int = 88) -> Plan:
    if options.post_training:
        planner: type = PostTrainingPlanner
    elif facts.loop is None and facts.trainers:
        planner = TrainerPlanner
    else:
        planner = LoopPlanner
    return planner(facts, options, line_length).build()
