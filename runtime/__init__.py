"""neural_coder.runtime: model compression with the API of Intel Neural Compressor 2.x.

Imports only torch (never libcst, black or click), so a rewritten script needs
nothing but torch and this package. The names exported here mirror INC 2.x's
package root (`from neural_compressor import ...`).
"""

from .config import (
    AccuracyCriterion,
    BenchmarkConfig,
    ConfigValueError,
    DistillationConfig,
    IntermediateLayersKnowledgeDistillationLossConfig,
    KnowledgeDistillationLossConfig,
    MixedPrecisionConfig,
    PostTrainingQuantConfig,
    QuantizationAwareTrainingConfig,
    SelfKnowledgeDistillationLossConfig,
    TuningCriterion,
    WeightPruningConfig,
    options,
    set_random_seed,
    set_resume_from,
    set_tensorboard,
    set_workspace,
)
from .loading import load, structure_for
from .model import Model
from .plain_tensors import state_dict_from_tensors, tensors_only
from .training import CompressionManager, prepare_compression

__all__ = [
    "AccuracyCriterion",
    "BenchmarkConfig",
    "CompressionManager",
    "ConfigValueError",
    "DistillationConfig",
    "IntermediateLayersKnowledgeDistillationLossConfig",
    "KnowledgeDistillationLossConfig",
    "MixedPrecisionConfig",
    "Model",
    "PostTrainingQuantConfig",
    "QuantizationAwareTrainingConfig",
    "SelfKnowledgeDistillationLossConfig",
    "TuningCriterion",
    "WeightPruningConfig",
    "load",
    "options",
    "prepare_compression",
    "set_random_seed",
    "set_resume_from",
    "set_tensorboard",
    "set_workspace",
    "state_dict_from_tensors",
    "structure_for",
    "tensors_only",
]
