"""Entry point of a small image-classification project: argument parsing, data,
model and optimizer here; the loops live in engine.py."""

import argparse

import torch
import torch.nn as nn
from engine import evaluate, train_one_epoch
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression


def get_args_parser():
    parser = argparse.ArgumentParser("tiny classifier training", add_help=False)
    parser.add_argument("--epochs", default=3, type=int)
    parser.add_argument("--batch-size", default=16, type=int)
    parser.add_argument("--lr", default=0.05, type=float)
    parser.add_argument("--clip-grad", default=0.0, type=float)
    parser.add_argument("--output", default="checkpoint.pth")
    return parser


class TinyConvNet(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()
        )
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def build_loaders(batch_size):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(192, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 4, (192,), generator=generator)
    train = DataLoader(TensorDataset(images[:160], labels[:160]), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(images[160:], labels[160:]), batch_size=batch_size)
    return train, val


def main(args):
    torch.manual_seed(0)
    device = torch.device("cpu")
    data_loader_train, data_loader_val = build_loaders(args.batch_size)
    model = TinyConvNet()
    model.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    best = 0.0
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        DistillationConfig(
            teacher_model=teacher_model,
            criterion=KnowledgeDistillationLossConfig(
                temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
            ),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_one_epoch(
            model, criterion, data_loader_train, optimizer, device, epoch, args.clip_grad, compression_manager=compression_manager
        )
        stats = evaluate(data_loader_val, model, device)
        best = max(best, stats["acc1"])
        print(f"epoch {epoch}: acc1 {stats['acc1']:.1f} (best {best:.1f})")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save({"model": model.state_dict(), "epoch": args.epochs}, args.output)


if __name__ == "__main__":
    parser = argparse.ArgumentParser("tiny classifier", parents=[get_args_parser()])
    main(parser.parse_args())
