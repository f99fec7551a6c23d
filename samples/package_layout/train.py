"""Training entry point of a project whose helpers live in the utils package."""

import argparse

import torch
from torch import nn
from utils.data import get_dataloaders
from utils.train_utils import train_epoch, validate


class Classifier(nn.Module):
    def __init__(self, in_features=20, hidden=64, classes=2):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.out(x)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=25)
    parser.add_argument("--lr", type=float, default=0.01)
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(0)
    train_loader, val_loader = get_dataloaders(args.batch_size)
    model = Classifier()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        train_loss = train_epoch(epoch, model, train_loader, criterion, optimizer)
        accuracy = validate(model, val_loader)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, val accuracy {accuracy:.3f}")
    torch.save(model.state_dict(), "classifier.pt")


if __name__ == "__main__":
    main()
