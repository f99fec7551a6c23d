"""Small CIFAR-style networks that can hand back their intermediate features."""

import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


class TinyResNet(nn.Module):
    def __init__(self, width=8, depth=1, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.layer = nn.Sequential(*[BasicBlock(width) for _ in range(depth)])
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x, is_feat=False):
        f0 = F.relu(self.bn(self.stem(x)))
        f1 = self.layer(f0)
        pooled = f1.mean(dim=(2, 3))
        logits = self.fc(pooled)
        if is_feat:
            return [f0, f1, pooled], logits
        return logits


model_dict = {
    "resnet8": lambda num_classes: TinyResNet(width=8, depth=1, num_classes=num_classes),
    "resnet14": lambda num_classes: TinyResNet(width=16, depth=2, num_classes=num_classes),
}
