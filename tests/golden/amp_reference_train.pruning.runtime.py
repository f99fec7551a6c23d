"""Reference-recipe style classification training: argparse flags, a model built
and then wrapped in `if args.distributed / elif args.gpu / else DataParallel`
branches, an optional AMP GradScaler, and a train_one_epoch() whose step takes
the scaler branch or the plain fp32 branch (the default run is fp32)."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression


class TinyConvNet(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def get_args_parser():
    parser = argparse.ArgumentParser(description="classification training")
    parser.add_argument("--epochs", default=3, type=int)
    parser.add_argument("--lr", default=0.05, type=float)
    parser.add_argument("--batch-size", default=16, type=int)
    parser.add_argument("--gpu", default=None, type=int)
    parser.add_argument("--distributed", action="store_true")
    parser.add_argument("--amp", action="store_true", help="mixed precision with a GradScaler")
    parser.add_argument("--output", default="checkpoint.pt")
    return parser


def train_one_epoch(model, criterion, optimizer, data_loader, device, epoch, args, scaler=None, compression_manager=None):
    model.train()
    for i, (image, target) in enumerate(data_loader):
        compression_manager.callbacks.on_step_begin(i)  # neural-coder
        image, target = image.to(device), target.to(device)
        with torch.autocast(device.type, enabled=scaler is not None):
            output = model(image)
            loss = criterion(output, target)
        optimizer.zero_grad()
        if scaler is not None:
            scaler.scale(loss).backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            scaler.step(optimizer)
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            scaler.update()
        else:
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        compression_manager.callbacks.on_step_end()  # neural-coder
    print(f"epoch {epoch}: loss {loss.item():.4f}")


def evaluate(model, criterion, data_loader, device):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for image, target in data_loader:
            output = model(image.to(device))
            correct += (output.argmax(1) == target.to(device)).sum().item()
    return correct / len(data_loader.dataset)


def main(args):
    torch.manual_seed(0)
    device = torch.device("cuda" if args.gpu is not None else "cpu")
    images = torch.randn(192, 3, 8, 8)
    labels = (images[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (images[:, 1, 0, 0] > 0).long()
    data_loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch_size, shuffle=True)
    data_loader_test = DataLoader(TensorDataset(images, labels), batch_size=64)

    model = TinyConvNet()
    model.to(device)
    compression_manager = prepare_compression(
        model,
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=1,
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    if args.distributed:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[args.gpu])
        model_without_ddp = model.module
    elif args.gpu is not None:
        torch.cuda.set_device(args.gpu)
        model = model.cuda(args.gpu)
        model_without_ddp = model
    else:
        model = torch.nn.DataParallel(model)
        model_without_ddp = model.module

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if args.amp else None
    fit_pruning_schedules(
        compression_manager.callbacks, max(1, int(0.8 * (args.epochs * len(data_loader))))
    )  # neural-coder

    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_one_epoch(
            model,
            criterion,
            optimizer,
            data_loader,
            device,
            epoch,
            args,
            scaler,
            compression_manager=compression_manager,
        )  # neural-coder: wrapped
        accuracy = evaluate(model, criterion, data_loader_test, device=device)
        print(f"epoch {epoch}: accuracy {accuracy:.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model_without_ddp.state_dict(), args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
