"""Distillation of a torchvision segmentation model: its output is `{"out": ..., "aux":
...}` (the rewritten script crashed: 'no logits tensor'), and its logits are
`(batch, classes, H, W)`, whose classes are dim 1: the softmax ran over the width."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from neural_coder.runtime.distillation import (
    KnowledgeDistillationLoss,
    kl_divergence,
    logits_fields,
    soft_cross_entropy,
)
from neural_coder.runtime.distillation.loss_base import logits_of


def test_the_out_of_a_segmentation_output_is_its_prediction():
    out, aux = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    assert logits_of({"out": out, "aux": aux}) is out
    assert list(logits_fields({"out": out, "aux": aux})) == ["out"]
    assert logits_fields({"out": out})["out"] is out
    # `logits` still wins; a dict with neither is still refused with its keys
    assert logits_of({"logits": aux, "out": out}) is aux
    with pytest.raises(TypeError, match="aux"):
        logits_fields({"aux": aux})


def test_dense_logits_are_compared_over_the_class_dim():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    per_pixel_s = s.permute(0, 2, 3, 1).reshape(-1, 3)  # one row of classes per pixel
    per_pixel_t = t.permute(0, 2, 3, 1).reshape(-1, 3)
    torch.testing.assert_close(kl_divergence(s, t), kl_divergence(per_pixel_s, per_pixel_t))
    expected = (-F.softmax(per_pixel_t, -1) * F.log_softmax(per_pixel_s, -1)).sum(-1).mean()
    torch.testing.assert_close(soft_cross_entropy(s, t), expected)
    # 2-D and 3-D logits keep the last dim: (batch, classes), (batch, tokens, vocab)
    s3, t3 = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    expected3 = (-F.softmax(t3, -1) * F.log_softmax(s3, -1)).sum(-1).mean()
    torch.testing.assert_close(soft_cross_entropy(s3, t3), expected3)


def test_the_loss_distils_a_segmentation_output():
    torch.manual_seed(0)
    student = {"out": torch.randn(2, 3, 4, 4, requires_grad=True), "aux": torch.randn(2, 3, 4, 4)}
    teacher = {"out": torch.randn(2, 3, 4, 4), "aux": torch.randn(2, 3, 4, 4)}
    loss = KnowledgeDistillationLoss(loss_types=("CE", "KL"))
    result = loss.compute(student, teacher, torch.tensor(1.0))
    assert result.distillation is not None and result.distillation.item() > 0
    result.total.backward()
    assert student["out"].grad is not None and student["out"].grad.abs().sum() > 0
