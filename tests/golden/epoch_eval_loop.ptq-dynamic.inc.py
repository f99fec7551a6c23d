"""A small CNN trained on synthetic images; each epoch trains, then measures the model
on the validation set and prints it. Nothing after the epoch loop uses the model: the
last epoch's printed accuracy is the result."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_compressor import quantization
from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def make_loaders(batch_size):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(160, 1, 8, 8, generator=g)
    labels = (images.mean(dim=(1, 2, 3)) > 0).long() + 2 * (images[:, 0, 0, 0] > 0).long()
    train = TensorDataset(images[:128], labels[:128])
    val = TensorDataset(images[128:], labels[128:])
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=g),
        DataLoader(val, batch_size=32),
    )


def train_one_epoch(model, loader, optimizer):
    model.train()
    total = 0.0
    for images, labels in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)


def evaluate(model, loader):
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            seen += labels.numel()
    return correct / seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    torch.manual_seed(0)
    train_loader, val_loader = make_loaders(args.batch_size)
    model = SmallNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for epoch in range(1, args.epochs + 1):
        loss = train_one_epoch(model, train_loader, optimizer)
        if epoch == args.epochs:  # neural-coder
            quantized_model = quantization.fit(
                model,
                PostTrainingQuantConfig(
                    approach="dynamic",
                    accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
                    tuning_criterion=TuningCriterion(max_trials=100),
                ),
                eval_func=lambda candidate: float(evaluate(candidate, val_loader)),
            )  # neural-coder
            model = quantized_model if quantized_model is not None else model  # neural-coder
            if quantized_model is not None:  # neural-coder
                quantized_model.save("neural_coder_output/ptq-dynamic")  # neural-coder
        accuracy = evaluate(model, val_loader)
        print(f"epoch {epoch}: loss {loss:.4f} val accuracy {accuracy:.4f}")
        scheduler.step()


if __name__ == "__main__":
    main()
