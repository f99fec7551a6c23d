"""1.x static quantization that reads `quantizer.model` after fit: the tuned result
is compared with the model the quantizer was given."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Quantization, common
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(96, 16)
y = (x[:, :8].sum(1) > 0).long()
loader = DataLoader(TensorDataset(x, y), batch_size=16)
net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))


def accuracy(model):
    correct = 0
    with torch.no_grad():
        for data, target in loader:
            correct += int((model(data).argmax(1) == target).sum())
    return correct / len(loader.dataset)


quantizer = Quantization("read_after_fit.yaml")
quantizer.model = common.Model(net)
quantizer.calib_dataloader = loader
quantizer.eval_func = accuracy
q_model = quantizer.fit()
print("fp32 accuracy", accuracy(quantizer.model.model))
print("int8 accuracy", accuracy(q_model.model))
