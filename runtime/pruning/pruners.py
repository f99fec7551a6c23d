"""Pruners (spec 3.1-3.3, 3.7): one per processed config dict, over the layers it selected.

A pruner keys everything by layer name (the module's name in the wrapper's
current model) and holds the weight `Parameter` of each layer, never the module,
so a model replacement (QAT preparation) only needs `rebind`.

* `BasicPruner` (`<criterion>`): on a pruning step, new masks from the criterion's
  scores, the pattern and the schedule; weights multiplied by the masks at once
  and again after every optimizer step.
* `PatternLockPruner` (`pattern_lock`): at its one step, the masks become the
  weights' existing zeros (collapsed to the pattern) and stay.
* `ProgressivePruner` (`<criterion>_progressive`): between two pruning steps, the
  newly pruned weights are zeroed in `progressive_steps` slices (lowest scores
  first, ranked across layers).
* Group-lasso regularization (`reg_type="group_lasso"`, NxM patterns) on any of them.

`BasicPruner` lives in `basic_pruner.py`, `ProgressivePruner` in `progressive.py`;
both are importable from here.

Per-step work outside pruning steps is the mask multiply only (done by the
compressor for all pruners at once); masks are weight-shaped tensors in the
weight's dtype, kept only for layers that have pruned elements.

Where this differs from INC on purpose:

* Exactly `floor(ratio * units)` units are pruned (no tie over-pruning) and a
  pruned unit stays pruned (masks only grow); see `patterns.py`.
* A pruning step that needs gradient scores before any backward ran (a gradient
  criterion at step 0, e.g. one-shot `start_step == end_step == 0`, which INC
  rejects or prunes on zero scores) is postponed to the first step that has
  them, with a warning.
* Progressive pruning: the last pruning step applies its full masks (INC
  interpolates it over steps after `end_step`, which never run, so the target
  was never reached); with `pruning_frequency < progressive_steps` the slices
  are one step apart (INC used `progressive_steps` as the interval, so no
  intermediate slice ever ran).
* Group lasso shrinks each block by the proximal step of `reg_coeff * ||W_b||_2`:
  `W_b <- W_b * max(0, 1 - reg_coeff / ||W_b||_2)`. INC scales by
  `reg_coeff / ||grad_b||_2`, which explodes (and flips signs) for blocks whose
  gradient is near zero; 1.x used the weight norm, as here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..config import ConfigValueError
from .basic_pruner import BasicPruner
from .criteria import Criterion
from .progressive import ProgressivePruner

__all__ = ["BasicPruner", "PatternLockPruner", "ProgressivePruner", "get_pruner"]

log = logging.getLogger(__name__)

_UNSUPPORTED_TYPES = {
    "snip_momentum_block": "block-mask pruning (learnable block_mask parameters)",
    "retrain_free": "retrain-free pruning (learnable block_mask parameters)",
}


class PatternLockPruner(BasicPruner):
    """`pattern_lock`: the existing zeros become the masks at the (single) step and stay."""

    kind = "pattern_lock"

    def _make_criterion(self, ptype: str) -> Criterion | None:
        return None

    def on_step_begin(self, step: int) -> bool:
        if self.locked or step != self.schedule.start:
            return False
        self.lock_masks()
        self.locked = True
        self.finished = True
        self.history.append((step, self.current_sparsity, self.current_sparsity))
        log.info("%s: locked the existing sparsity %.4f", self.label, self.current_sparsity)
        return True


def get_pruner(
    info: Mapping[str, Any], params: Mapping[str, nn.Parameter], index: int = 0
) -> BasicPruner:
    """The pruner for one processed config dict (spec 3.1)."""
    ptype = str(info["pruning_type"])
    if "mha" in str(info["pattern"]):
        raise ConfigValueError(
            "WeightPruningConfig",
            "pattern",
            info["pattern"],
            "an NxM or N:M pattern (attention head pruning, 'mha', is not supported by this "
            "runtime)",
        )
    base = ptype[: -len("_progressive")] if ptype.endswith("_progressive") else ptype
    if base in _UNSUPPORTED_TYPES:
        raise ConfigValueError(
            "WeightPruningConfig",
            "pruning_type",
            ptype,
            "magnitude, gradient, snip or snip_momentum (optionally with _progressive) or "
            f"pattern_lock ({_UNSUPPORTED_TYPES[base]} is not supported by this runtime)",
        )
    if ptype == "pattern_lock":
        return PatternLockPruner(info, params, index)
    if ptype.endswith("_progressive"):
        return ProgressivePruner(info, params, index)
    return BasicPruner(info, params, index)
