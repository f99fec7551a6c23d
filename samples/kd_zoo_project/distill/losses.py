"""Distillation losses; some carry parameters of their own that are trained with the
student (a regressor from student to teacher features)."""

import torch.nn as nn
import torch.nn.functional as F


class DistillKL(nn.Module):
    """Hinton's soft-target loss."""

    def __init__(self, T):
        super().__init__()
        self.T = T

    def forward(self, y_s, y_t):
        p_s = F.log_softmax(y_s / self.T, dim=1)
        p_t = F.softmax(y_t / self.T, dim=1)
        return F.kl_div(p_s, p_t, reduction="batchmean") * self.T**2


class HintLoss(nn.Module):
    """FitNets: match an intermediate feature map."""

    def __init__(self):
        super().__init__()
        self.crit = nn.MSELoss()

    def forward(self, f_s, f_t):
        return self.crit(f_s, f_t)


class ConvRegressor(nn.Module):
    """Maps the student's feature map to the teacher's channel count."""

    def __init__(self, s_channels, t_channels):
        super().__init__()
        self.conv = nn.Conv2d(s_channels, t_channels, 1)
        self.bn = nn.BatchNorm2d(t_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Similarity(nn.Module):
    """Similarity-preserving distillation: no parameters, compares batch Gram matrices."""

    def forward(self, g_s, g_t):
        loss = 0.0
        for f_s, f_t in zip(g_s, g_t):
            s = F.normalize(f_s.flatten(1) @ f_s.flatten(1).t())
            t = F.normalize(f_t.flatten(1) @ f_t.flatten(1).t())
            loss = loss + (s - t).pow(2).mean()
        return loss
