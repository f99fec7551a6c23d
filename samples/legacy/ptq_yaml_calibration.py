"""1.x static quantization whose calibration data the yaml built from a dataset
(`quantization.calibration.dataloader`); the script itself only has the loader its
evaluation function reads."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Quantization, common
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
features = torch.randn(80, 12)
labels = (features[:, 0] > 0).long()
val_loader = DataLoader(TensorDataset(features, labels), batch_size=8)
model = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 2))


def eval_func(model):
    correct = total = 0
    with torch.no_grad():
        for inputs, target in val_loader:
            correct += int((model(inputs).argmax(1) == target).sum())
            total += len(target)
    return correct / total


quantizer = Quantization("yaml_calibration.yaml")
quantizer.model = common.Model(model)
quantizer.eval_func = eval_func
q_model = quantizer.fit()
q_model.save("./yaml_calibration_int8")
