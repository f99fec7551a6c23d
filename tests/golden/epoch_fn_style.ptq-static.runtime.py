"""Classic train()/test() per-epoch functions driven by main(), with argparse."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


class LeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc1 = nn.Linear(16 * 2 * 2, 48)
        self.fc2 = nn.Linear(48, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


def synthetic_digits(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 14, 14, generator=g)
    y = (x[:, 0, :7].mean(dim=(1, 2)) > 0).long() * 3 + (x[:, 0, 7:].mean(dim=(1, 2)) > 0).long()
    return TensorDataset(x, y)


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)}] Loss: {loss.item():.6f}")


def test(model, device, test_loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            correct += output.argmax(dim=1).eq(target).sum().item()
    test_loss /= len(test_loader.dataset)
    accuracy = correct / len(test_loader.dataset)
    print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {accuracy:.4f}")
    return accuracy


def main():
    parser = argparse.ArgumentParser(description="LeNet on synthetic digits")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--log-interval", type=int, default=8)
    parser.add_argument("--save-model", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(1)
    device = torch.device("cpu")

    train_loader = DataLoader(synthetic_digits(384, 10), batch_size=32, shuffle=True)
    test_loader = DataLoader(synthetic_digits(192, 11), batch_size=64)

    model = LeNet().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        test(model, device, test_loader)
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=test_loader,
        eval_func=lambda candidate: test(candidate, device, test_loader),
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder

    if args.save_model:
        torch.save(model.state_dict(), "lenet.pt")


if __name__ == "__main__":
    main()
