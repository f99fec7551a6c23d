"""A classifier trained with a hand-rolled exponential moving average (EMA) of its weights:
no EMA class, just `ema_model = copy.deepcopy(model)` and a small function that moves the
copy's parameters towards the model's after every optimizer step (and copies its
buffers). The copy is what the script reports, saves and reloads after training.

Synthetic data keeps it self-contained.
"""

import argparse
import copy

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


class Classifier(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Linear(16, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        self.classifier = nn.Linear(width, 4)

    def forward(self, x):
        return self.classifier(self.features(x))


@torch.no_grad()
def update_ema(ema_model, model, decay):
    ema_params = list(ema_model.parameters())
    model_params = list(model.parameters())
    torch._foreach_lerp_(ema_params, model_params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema_model.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


@torch.no_grad()
def accuracy(model, loader):
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--ema-decay", type=float, default=0.9)
    parser.add_argument("--output", default="ema_classifier.pt")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(384, 16)
    y = x[:, :4].argmax(1)
    train_loader = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[320:], y[320:]), batch_size=32)

    model = Classifier()
    ema_model = copy.deepcopy(model).eval()
    ema_model.requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(args.epochs):
        model.train()
        for inputs, targets in train_loader:
            loss = nn.functional.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            update_ema(ema_model, model, args.ema_decay)
        print(f"epoch {epoch}: loss {loss.item():.4f}")
    quantized_model = quantization.fit(
        ema_model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=val_loader,
        eval_func=lambda candidate: accuracy(candidate, val_loader),
    )  # neural-coder
    ema_model = quantized_model if quantized_model is not None else ema_model  # neural-coder

    ema_accuracy = accuracy(ema_model, val_loader)
    print(f"ema accuracy {ema_accuracy:.3f}")
    torch.save(ema_model.state_dict(), args.output)


if __name__ == "__main__":
    main()
