# A small image classifier trained for a few epochs, evaluated and saved: the sample for
# multi-shot pipelines (distillation, then pruning, then quantization, ...).
import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.hidden = nn.Linear(32 * 16, 64)
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        x = self.features(x).flatten(1)
        return self.head(torch.relu(self.hidden(x)))


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            total += labels.numel()
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default="final_model.pt")
    args = parser.parse_args()

    torch.manual_seed(0)
    images = torch.randn(256, 3, 8, 8)
    labels = images.mean(dim=(2, 3)).argmax(1) % 4
    train_loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
    val_loader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=32)

    model = SmallCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        model.train()
        for step, (x, y) in enumerate(train_loader):
            output = model(x)
            loss = criterion(output, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")

    print("accuracy", evaluate(model, val_loader))
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
