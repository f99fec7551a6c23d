"""pytorch/examples style: each epoch trains at most --max-batches batches
(`if batch_idx >= max_batches: break`), then evaluates; nothing reads the model after
the epoch loop, so a post-training fit goes before the last epoch's evaluation."""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


def train(model, loader, optimizer, max_batches):
    model.train()
    for batch_idx, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if max_batches and batch_idx >= max_batches:
            break


def test(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    accuracy = correct / len(loader.dataset)
    print(f"accuracy {accuracy:.3f} ({type(model[0]).__module__})")
    return accuracy


parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--max-batches", type=int, default=5)
args = parser.parse_args()
torch.manual_seed(0)
x = torch.randn(256, 16)
y = x[:, :4].argmax(1)
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
val_loader = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(args.epochs):
    train(model, loader, optimizer, args.max_batches)
    if epoch == args.epochs - 1:  # neural-coder
        quantized_model = quantization.fit(
            model,
            PostTrainingQuantConfig(
                approach="dynamic",
                accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
                tuning_criterion=TuningCriterion(max_trials=100),
            ),
            eval_func=lambda candidate: test(candidate, val_loader),
        )  # neural-coder
        model = quantized_model if quantized_model is not None else model  # neural-coder
        if quantized_model is not None:  # neural-coder
            quantized_model.save("neural_coder_output/ptq-dynamic")  # neural-coder
    test(model, val_loader)
