"""Knowledge distillation: the losses of INC 2.x, feature capture and the compressor.

`DistillationCompressor` is what the compression manager builds from a
`DistillationConfig`; the loss classes can also be used on their own.
"""

from __future__ import annotations

from .compressor import DistillationCompressor, ModelInputs, call_model, move_to_device
from .features import FeatureCapture, LayerSpec, UnknownLayerError, select_output
from .losses import (
    CRITERIA,
    DistillationLoss,
    DistillationResult,
    IntermediateLayersKnowledgeDistillationLoss,
    KnowledgeDistillationLoss,
    PyTorchIntermediateLayersKnowledgeDistillationLoss,
    PyTorchKnowledgeDistillationLoss,
    PyTorchSelfKnowledgeDistillationLoss,
    SelfKnowledgeDistillationLoss,
    create_criterion,
    kl_divergence,
    logits_fields,
    logits_of,
    soft_cross_entropy,
)

__all__ = [
    "CRITERIA",
    "DistillationCompressor",
    "DistillationLoss",
    "DistillationResult",
    "FeatureCapture",
    "IntermediateLayersKnowledgeDistillationLoss",
    "KnowledgeDistillationLoss",
    "LayerSpec",
    "ModelInputs",
    "PyTorchIntermediateLayersKnowledgeDistillationLoss",
    "PyTorchKnowledgeDistillationLoss",
    "PyTorchSelfKnowledgeDistillationLoss",
    "SelfKnowledgeDistillationLoss",
    "UnknownLayerError",
    "call_model",
    "create_criterion",
    "kl_divergence",
    "logits_fields",
    "logits_of",
    "move_to_device",
    "select_output",
    "soft_cross_entropy",
]
