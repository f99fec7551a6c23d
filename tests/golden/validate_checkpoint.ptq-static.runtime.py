"""Evaluate a trained image classifier: load its weights, build the validation data, run
one pass and report top-1 / top-5 (the style of image-model validation scripts: the
model is ready before the data is, and the evaluation loop is written inline)."""

import argparse
import time
from collections import OrderedDict

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig

parser = argparse.ArgumentParser(description="validate a classifier")
parser.add_argument("--checkpoint", default="")
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--num-classes", type=int, default=10)
parser.add_argument("--log-interval", type=int, default=2)


class Meter:
    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, value, n=1):
        self.total += value * n
        self.count += n

    @property
    def avg(self):
        return self.total / max(self.count, 1)


def topk_accuracy(logits, target, ks=(1,)):
    _, ranked = logits.topk(max(ks), dim=1)
    hits = ranked.eq(target.unsqueeze(1))
    return [hits[:, :k].any(dim=1).float().mean() * 100.0 for k in ks]


def build_classifier(num_classes):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def validation_loader(batch_size):
    g = torch.Generator().manual_seed(0)
    images, labels = (
        torch.randn(64, 3, 16, 16, generator=g),
        torch.randint(0, 10, (64,), generator=g),
    )
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size)


def validate(args):
    device = torch.device("cpu")
    model = build_classifier(args.num_classes)
    if args.checkpoint:
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu"))
    print(f"params: {sum(p.numel() for p in model.parameters())}")
    model = model.to(device)
    model.eval()
    loader = validation_loader(args.batch_size)
    criterion = nn.CrossEntropyLoss()
    losses, top1, top5 = Meter(), Meter(), Meter()
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(approach="static", calibration_sampling_size=[100]),
        calib_dataloader=loader,
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    with torch.no_grad():
        start = time.time()
        for step, (images, target) in enumerate(loader):
            output = model(images.to(device))
            losses.update(criterion(output, target).item(), images.size(0))
            acc1, acc5 = topk_accuracy(output, target, ks=(1, 5))
            top1.update(acc1.item(), images.size(0))
            top5.update(acc5.item(), images.size(0))
            if step % args.log_interval == 0:
                print(f"[{step}/{len(loader)}] loss {losses.avg:.4f} acc@1 {top1.avg:.2f}")
    kinds = sorted({type(m).__module__ for m in model.modules() if not list(m.children())})
    print(f"evaluated {', '.join(kinds)} in {time.time() - start:.2f}s")
    return OrderedDict(top1=round(top1.avg, 3), top5=round(top5.avg, 3), loss=round(losses.avg, 4))


def main():
    args = parser.parse_args()
    print(validate(args))


if __name__ == "__main__":
    main()
