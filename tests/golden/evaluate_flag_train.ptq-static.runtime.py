"""A classification trainer in the style of the large-scale image examples: the model is
trained and checkpointed every epoch (the best one copied aside), and `--evaluate` with
`--resume CHECKPOINT` evaluates a trained checkpoint and returns before any training."""

import argparse
import os
import shutil

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

parser = argparse.ArgumentParser(description="tiny classifier")
parser.add_argument("--epochs", default=2, type=int)
parser.add_argument("--lr", default=0.05, type=float)
parser.add_argument("-b", "--batch-size", default=16, type=int)
parser.add_argument("--resume", default="", type=str, help="checkpoint to start from")
parser.add_argument("-e", "--evaluate", action="store_true", help="evaluate the model and exit")

best_acc1 = 0.0


def build_model(num_classes: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes),
    )


def synthetic_split(n: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 8, 8, generator=gen)
    labels = (images[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (images[:, 1].mean(dim=(1, 2)) > 0).long()
    return TensorDataset(images, labels)


def main_worker(args):
    global best_acc1
    torch.manual_seed(0)
    model = build_model()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=0.9)
    start_epoch = 0
    if args.resume and os.path.isfile(args.resume):
        checkpoint = torch.load(args.resume, map_location="cpu")
        start_epoch = checkpoint["epoch"]
        best_acc1 = checkpoint["best_acc1"]
        model.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        print(f"=> loaded checkpoint '{args.resume}' (epoch {start_epoch})")

    train_loader = DataLoader(synthetic_split(128, 0), batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(synthetic_split(64, 1), batch_size=32)

    if args.evaluate:
        quantized_model = quantization.fit(
            model,
            PostTrainingQuantConfig(
                approach="static",
                calibration_sampling_size=[100],
                accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
                tuning_criterion=TuningCriterion(max_trials=100),
            ),
            calib_dataloader=val_loader,
            eval_func=lambda candidate: validate(val_loader, candidate, criterion),
        )  # neural-coder
        model = quantized_model if quantized_model is not None else model  # neural-coder
        validate(val_loader, model, criterion)
        return

    for epoch in range(start_epoch, args.epochs):
        train(train_loader, model, criterion, optimizer, epoch)
        acc1 = validate(val_loader, model, criterion)
        is_best = acc1 > best_acc1
        best_acc1 = max(acc1, best_acc1)
        save_checkpoint(
            {"epoch": epoch + 1, "state_dict": model.state_dict(), "best_acc1": best_acc1,
             "optimizer": optimizer.state_dict()},
            is_best,
        )
    nc_quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=val_loader,
        eval_func=lambda nc_candidate: validate(val_loader, nc_candidate, criterion),
    )  # neural-coder
    model = nc_quantized_model if nc_quantized_model is not None else model  # neural-coder
    if nc_quantized_model is not None:  # neural-coder
        nc_quantized_model.save("neural_coder_output/ptq-static")  # neural-coder


def train(train_loader, model, criterion, optimizer, epoch):
    model.train()
    for i, (images, target) in enumerate(train_loader):
        loss = criterion(model(images), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i % 4 == 0:
            print(f"Epoch [{epoch}][{i}/{len(train_loader)}] loss {loss.item():.4f}")


def validate(val_loader, model, criterion):
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for images, target in val_loader:
            output = model(images)
            loss_sum += criterion(output, target).item() * target.size(0)
            correct += (output.argmax(dim=1) == target).sum().item()
            total += target.size(0)
    acc1 = 100.0 * correct / total
    print(f" * Acc@1 {acc1:.3f} loss {loss_sum / total:.4f}")
    return acc1


def save_checkpoint(state, is_best, filename="checkpoint.pth.tar"):
    torch.save(state, filename)
    if is_best:
        shutil.copyfile(filename, "model_best.pth.tar")


if __name__ == "__main__":
    main_worker(parser.parse_args())
