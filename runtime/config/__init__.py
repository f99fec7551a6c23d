"""Config classes with the names, signatures, defaults and accepted values of INC 2.x.

`neural_compressor.config` (v2.2, spec section 2) is mirrored class for class, so a
script written for INC 2.x runs on this runtime by changing its imports. Every
config validates on construction *and* on attribute assignment, and a bad value
raises `ConfigValueError` (a `ValueError`) whose message names the parameter,
the value and what is allowed. INC raises bare `AssertionError`s instead.

Deliberate differences from INC (spec section 9):

* Defaults are never shared between instances (quirk 9.5): every config gets
  its own `AccuracyCriterion()`, `TuningCriterion()`, KD criterion, lists and
  dicts, and list/dict arguments are copied, so mutating one config (or the
  list you passed in) never changes another.
* `diagnosis=True` sets `max_trials=1` on *this* config's tuning criterion (a
  copy when you passed one in), not on a global instance.
* `AccuracyCriterion(tolerable_loss=0)`: an int is accepted and stored as a
  float (INC's type check rejects `0`).
* `WeightPruningConfig` validates its pruners at construction (INC only does it
  when `prepare_compression` runs); see `process_pruning_config`.

The classes live in one module per concern (`validation`, `criteria`, `quantization`,
`pruning`, `distillation`, `mixed_precision`, `benchmark`); every public name is
imported from here. The global `options` and its setters stay in this module.
"""

from __future__ import annotations

import os
import time
from typing import ClassVar

from .benchmark import BenchmarkConfig
from .criteria import AccuracyCriterion, TuningCriterion
from .distillation import (
    DistillationConfig,
    IntermediateLayersKnowledgeDistillationLossConfig,
    KnowledgeDistillationLossConfig,
    SelfKnowledgeDistillationLossConfig,
)
from .mixed_precision import MixedPrecisionConfig
from .pruning import (
    PRUNING_EXTRA_DEFAULTS,
    PRUNING_GLOBAL_DEFAULTS,
    PRUNING_TYPES,
    WeightPruningConfig,
    parse_pattern,
    process_pruning_config,
)
from .quantization import PostTrainingQuantConfig, QuantizationAwareTrainingConfig
from .validation import ConfigValueError, DotDict, Validator, _Config, boolean, integer, string

__all__ = [
    "AccuracyCriterion",
    "BenchmarkConfig",
    "ConfigValueError",
    "DistillationConfig",
    "DotDict",
    "IntermediateLayersKnowledgeDistillationLossConfig",
    "KnowledgeDistillationLossConfig",
    "MixedPrecisionConfig",
    "Options",
    "PRUNING_EXTRA_DEFAULTS",
    "PRUNING_GLOBAL_DEFAULTS",
    "PRUNING_TYPES",
    "PostTrainingQuantConfig",
    "QuantizationAwareTrainingConfig",
    "SelfKnowledgeDistillationLossConfig",
    "TuningCriterion",
    "WeightPruningConfig",
    "options",
    "parse_pattern",
    "process_pruning_config",
    "set_random_seed",
    "set_resume_from",
    "set_tensorboard",
    "set_workspace",
]


# -- options -----------------------------------------------------------------------
def _default_workspace() -> str:
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    return os.path.join(os.path.abspath("./nc_workspace"), stamp) + os.sep


class Options(_Config):
    """Process-wide options (`neural_compressor.config.options`, spec 2.1)."""

    _rules: ClassVar[dict[str, Validator]] = {
        "random_seed": integer(),
        "workspace": string(),
        "resume_from": string(allow_none=True),
        "tensorboard": boolean(),
    }

    def __init__(
        self,
        random_seed: int = 1978,
        workspace: str | None = None,
        resume_from: str | None = None,
        tensorboard: bool = False,
    ) -> None:
        self.random_seed = random_seed
        self.workspace = _default_workspace() if workspace is None else workspace
        self.resume_from = resume_from
        self.tensorboard = tensorboard

    def set_random_seed(self, seed: int) -> None:
        self.random_seed = seed

    def set_workspace(self, workspace: str) -> None:
        self.workspace = workspace

    def set_resume_from(self, resume_from: str | None) -> None:
        self.resume_from = resume_from

    def set_tensorboard(self, tensorboard: bool) -> None:
        self.tensorboard = tensorboard


#: the global options, like `neural_compressor.config.options`
options = Options()


def set_random_seed(seed: int) -> None:
    """`neural_compressor.set_random_seed`: the seed the tuning entry points use."""
    options.set_random_seed(seed)


def set_workspace(workspace: str) -> None:
    """`neural_compressor.set_workspace`: default folder of `save()`."""
    options.set_workspace(workspace)


def set_resume_from(resume_from: str | None) -> None:
    """`neural_compressor.set_resume_from`."""
    options.set_resume_from(resume_from)


def set_tensorboard(tensorboard: bool) -> None:
    """`neural_compressor.set_tensorboard`."""
    options.set_tensorboard(tensorboard)
