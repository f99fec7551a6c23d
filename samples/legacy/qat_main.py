"""1.x quantization-aware training: the yaml says quant_aware_training, `q_func` trains
(1.x prepared the model for QAT around it), and eval_func was used for tuning."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Quantization, common
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.relu(self.conv(x))))


def train(model, loader, epochs=2):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(epochs):
        for images, target in loader:
            loss = nn.functional.cross_entropy(model(images), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def main():
    torch.manual_seed(0)
    images = torch.randn(96, 1, 8, 8)
    target = (images.mean((1, 2, 3)) > 0).long()
    loader = DataLoader(TensorDataset(images, target), batch_size=16)
    model = Net()

    def q_func(model):
        return train(model, loader)

    def eval_func(model):
        model.eval()
        with torch.no_grad():
            return (model(images).argmax(1) == target).float().mean().item()

    quantizer = Quantization("qat.yaml")
    quantizer.model = common.Model(model)
    quantizer.q_func = q_func
    quantizer.eval_func = eval_func
    q_model = quantizer.fit()
    q_model.save("./qat_saved")
    return q_model


if __name__ == "__main__":
    result = main()
