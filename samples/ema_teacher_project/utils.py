"""Helpers of the self-distillation project: the multi-view wrapper, parameter groups
without weight decay for biases and norms, schedules and checkpointing."""

import math

import torch
import torch.nn as nn


class MultiViewWrapper(nn.Module):
    """Runs the backbone on every view of a batch in one pass and the head on the
    concatenated features, so that the student sees all views and the teacher only
    the global ones."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, views):
        if not isinstance(views, list):
            views = [views]
        features = self.backbone(torch.cat(views))
        return self.head(features)


def get_param_groups(model):
    decayed, not_decayed = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith(".bias") or param.ndim == 1:
            not_decayed.append(param)
        else:
            decayed.append(param)
    return [{"params": decayed}, {"params": not_decayed, "weight_decay": 0.0}]


def cosine_schedule(base, final, epochs, steps_per_epoch, warmup_epochs=0, start_warmup=0.0):
    warmup = [
        start_warmup + (base - start_warmup) * i / max(1, warmup_epochs * steps_per_epoch)
        for i in range(warmup_epochs * steps_per_epoch)
    ]
    total = epochs * steps_per_epoch - len(warmup)
    cosine = [
        final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / max(1, total)))
        for i in range(total)
    ]
    return warmup + cosine


def has_batchnorms(model):
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def save_checkpoint(state, path):
    torch.save(state, path)
