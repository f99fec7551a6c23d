import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import benchmark
from neural_coder.runtime.config import BenchmarkConfig


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(16 * 16, 10),
    )


def evaluate(model, dataloader):
    model.eval()
    hits, seen = 0, 0
    with torch.no_grad():
        for images, labels in dataloader:
            hits += (model(images).argmax(dim=1) == labels).sum().item()
            seen += labels.numel()
    return hits / seen


if __name__ == "__main__":
    images = torch.randn(200, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    reference = make_model()
    with torch.no_grad():
        labels = reference(images).argmax(dim=1)
    val_loader = DataLoader(TensorDataset(images, labels), batch_size=20)

    model = make_model()
    benchmark.fit(
        model, BenchmarkConfig(warmup=5, iteration=50, num_of_instance=1), b_dataloader=val_loader
    )  # neural-coder
    acc = evaluate(model, val_loader)
    print(f"accuracy: {acc:.4f}")
