"""A detection model in the torchvision contract: in train mode `model(images, targets)`
returns a dict of losses, summed by the loop; in eval mode `model(images)` returns one
dict of boxes, labels and scores per image. Images travel as lists (a `tuple(zip(*batch))`
collate). Each epoch trains, writes a checkpoint, then evaluates; nothing after the loop
reads the model."""

import argparse
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyDetector(nn.Module):
    """Mimics torchvision detection models: loss dict in train mode, list of dicts in eval."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.cls_head = nn.Linear(16, num_classes)
        self.box_head = nn.Linear(16, 4)

    def forward(self, images, targets=None):
        x = torch.stack(images) if isinstance(images, (list, tuple)) else images
        feats = self.backbone(x)
        logits = self.cls_head(feats)
        boxes = self.box_head(feats)
        if self.training:
            labels = torch.stack([t["labels"][0] for t in targets])
            gt = torch.stack([t["boxes"][0] for t in targets])
            return {
                "loss_classifier": F.cross_entropy(logits, labels),
                "loss_box_reg": F.smooth_l1_loss(boxes, gt),
            }
        scores, labels = logits.softmax(-1).max(-1)
        return [
            {"boxes": b[None], "labels": c[None], "scores": s[None]}
            for b, c, s in zip(boxes, labels, scores)
        ]


def make_dataset(n):
    data = []
    for _ in range(n):
        img = torch.rand(3, 32, 32)
        label = torch.randint(0, 3, (1,))
        box = torch.rand(1, 4)
        data.append((img, {"boxes": box, "labels": label}))
    return data


def collate_fn(batch):
    return tuple(zip(*batch))


def train_one_epoch(model, optimizer, data_loader, device, epoch, print_freq=2):
    model.train()
    for i, (images, targets) in enumerate(data_loader):
        images = list(image.to(device) for image in images)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        loss_dict = model(images, targets)
        losses = sum(loss for loss in loss_dict.values())
        loss_value = losses.item()
        if not math.isfinite(loss_value):
            print(f"Loss is {loss_value}, stopping training")
            sys.exit(1)
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
        if i % print_freq == 0:
            print(f"Epoch [{epoch}] [{i}] loss {loss_value:.4f}")


@torch.inference_mode()
def evaluate(model, data_loader, device):
    model.eval()
    correct, total = 0, 0
    for images, targets in data_loader:
        images = list(img.to(device) for img in images)
        outputs = model(images)
        for out, t in zip(outputs, targets):
            correct += int(out["labels"][0] == t["labels"][0])
            total += 1
    acc = correct / total
    print(f"eval accuracy {acc:.3f}")
    return acc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--output-dir", default=".")
    args = parser.parse_args()
    device = torch.device("cpu")
    torch.manual_seed(0)
    dataset, dataset_test = make_dataset(32), make_dataset(16)
    data_loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True, collate_fn=collate_fn)
    data_loader_test = torch.utils.data.DataLoader(dataset_test, batch_size=4, collate_fn=collate_fn)
    model = TinyDetector(num_classes=3)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
    for epoch in range(args.epochs):
        train_one_epoch(model, optimizer, data_loader, device, epoch)
        lr_scheduler.step()
        checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
        torch.save(checkpoint, f"{args.output_dir}/model_{epoch}.pth")
        evaluate(model, data_loader_test, device=device)


if __name__ == "__main__":
    main()
