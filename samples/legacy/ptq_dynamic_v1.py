"""The 1.0-style API still shipped in 1.14: `neural_compressor.Quantization(yaml)` called
with the model and functions, post-training dynamic quantization from the yaml."""

import torch
import torch.nn as nn
from neural_compressor import Quantization

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
samples = torch.randn(32, 8)
labels = model(samples).argmax(1)


def evaluate(m):
    with torch.no_grad():
        return (m(samples).argmax(1) == labels).float().mean().item()


quantizer = Quantization("dynamic.yaml")
q_model = quantizer(model, eval_func=evaluate)  # 1.0 style: the model and functions go to the call
print("int8 accuracy", evaluate(q_model.model))
