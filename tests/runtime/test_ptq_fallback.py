"""Tuning fallbacks: an op kept in fp32 keeps what FX would have fused into it float too."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.quant import get_backend


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu(self.bn(self.conv(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def test_a_conv_kept_in_fp32_keeps_its_batch_norm_and_relu_float():
    torch.manual_seed(0)
    model = Net().eval()
    images = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    loader = DataLoader(TensorDataset(images, torch.zeros(16, dtype=torch.long)), batch_size=8)

    def evaluate(candidate: nn.Module) -> float:  # the goal holds only with `conv` in fp32
        with torch.no_grad():
            candidate(images[:2])
        return 0.5 if "conv" in get_backend().quantized_module_names(candidate) else 1.0

    q = quantization.fit(
        model, PostTrainingQuantConfig(), calib_dataloader=loader, eval_func=evaluate
    )
    assert q is not None
    assert set(get_backend().quantized_module_names(q.model)) == {"conv2", "fc"}
    graph = {node.name: node for node in q.model.graph.nodes}
    relu = next(n for n in graph.values() if n.op == "call_module" and n.target == "relu")
    bn = relu.args[0]
    # float conv -> float BN -> float ReLU, quantized only after them (for conv2)
    assert bn.op == "call_module" and bn.target == "bn"
    assert bn.args[0].op == "call_module" and bn.args[0].target == "conv"
    assert any("quantize_per_tensor" in str(user.target) for user in relu.users)
