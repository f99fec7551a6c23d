"""A classifier trained for a few epochs whose evaluation and export are asked for on the
command line, the way plain research scripts gate them: `--evaluate` measures the
trained model on the held-out split, `--export` saves its weights; a run with neither
flag only trains."""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


def accuracy(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for inputs, labels in loader:
            correct += (model(inputs).argmax(1) == labels).sum().item()
    return correct / len(loader.dataset)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--export", default="")
    args = parser.parse_args()
    torch.manual_seed(0)
    features = torch.randn(256, 10)
    labels = (features[:, :2].sum(1) > 0).long()
    train_loader = DataLoader(TensorDataset(features[:192], labels[:192]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(features[192:], labels[192:]), batch_size=32)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(args.epochs):
        model.train()
        for inputs, targets in train_loader:
            loss = nn.functional.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
    if args.evaluate or args.export:  # neural-coder
        quantized_model = quantization.fit(
            model,
            PostTrainingQuantConfig(
                approach="static",
                calibration_sampling_size=[100],
                accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
                tuning_criterion=TuningCriterion(max_trials=100),
            ),
            calib_dataloader=val_loader,
            eval_func=lambda candidate: accuracy(candidate, val_loader),
        )  # neural-coder
        model = quantized_model if quantized_model is not None else model  # neural-coder
    if args.evaluate:
        print(f"val accuracy {accuracy(model, val_loader):.4f}")
    if args.export:
        torch.save(model.state_dict(), args.export)


if __name__ == "__main__":
    main()
