"""Training-time weight pruning with the semantics of INC 2.x (spec sections 2.6 and 3).

`PruningCompressor` is what `prepare_compression` builds for a `WeightPruningConfig`.
The parts: `patterns` (NxM / N:M masks, global and local selection), `criteria`
(magnitude, gradient, snip, snip_momentum), `schedules` (one-shot and iterative
exp/cos/linear/cube), `pruners` (basic, pattern_lock, progressive, group lasso;
`basic_pruner`, `progressive`), `selection` (which modules a config prunes), `masking`
(the per-step mask multiply), `shrink` (removing pruned channels: `shrink_model`,
`WeightPruningConfig(shrink=True)`).
"""

from .compressor import PruningCompressor, classifier_head, select_modules, sparsity_ratios
from .criteria import CRITERIA, get_criterion
from .patterns import PatternNInM, PatternNxM, get_pattern
from .pruners import BasicPruner, PatternLockPruner, ProgressivePruner, get_pruner
from .schedules import Schedule, scheduled_sparsity
from .shrink import ShrinkReport, ShrinkUnavailableError, shrink_model

__all__ = [
    "CRITERIA",
    "BasicPruner",
    "PatternLockPruner",
    "PatternNInM",
    "PatternNxM",
    "ProgressivePruner",
    "PruningCompressor",
    "Schedule",
    "ShrinkReport",
    "ShrinkUnavailableError",
    "classifier_head",
    "get_criterion",
    "get_pattern",
    "get_pruner",
    "scheduled_sparsity",
    "select_modules",
    "shrink_model",
    "sparsity_ratios",
]
