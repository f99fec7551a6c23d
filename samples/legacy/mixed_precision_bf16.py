"""1.x MixedPrecision: bf16 conversion with an accuracy check through eval_func."""

import torch
import torch.nn as nn
from neural_compressor.experimental import MixedPrecision, common

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
data = torch.randn(64, 32)
reference = model(data).argmax(1)


def eval_func(m):
    with torch.no_grad():
        return (m(data).argmax(1) == reference).float().mean().item()


converter = MixedPrecision("mixed.yaml")
converter.precisions = "bf16"
converter.model = common.Model(model)
converter.eval_func = eval_func
bf16_model = converter.fit()
print("bf16 agreement", eval_func(bf16_model.model))
