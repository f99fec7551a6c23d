"""A small UNet for binary masks: its forward returns `{"out": logits}` as torchvision's
segmentation models do, the loss (a `def criterion`: BCE with logits plus dice) is handed
to `train_one_epoch` and reads `output["out"]`; the best checkpoint (by dice) and a last
one are saved."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.net(x)


class TinyUNet(nn.Module):
    def __init__(self, in_ch=3, n_classes=1):
        super().__init__()
        self.down1 = DoubleConv(in_ch, 8)
        self.down2 = DoubleConv(8, 16)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = DoubleConv(16, 8)
        self.head = nn.Conv2d(8, n_classes, 1)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(F.max_pool2d(d1, 2))
        u = self.up(d2)
        out = self.head(self.dec(torch.cat([u, d1], dim=1)))
        return {"out": out}


def dice_loss(logits, target, eps=1e-6):
    probs = torch.sigmoid(logits)
    inter = (probs * target).sum((1, 2, 3))
    union = probs.sum((1, 2, 3)) + target.sum((1, 2, 3))
    return 1 - ((2 * inter + eps) / (union + eps)).mean()


def criterion(logits, target):
    return F.binary_cross_entropy_with_logits(logits, target) + dice_loss(logits, target)


def evaluate(model, loader, device):
    model.eval()
    dice_total, n = 0.0, 0
    with torch.inference_mode():
        for image, mask in loader:
            image, mask = image.to(device), mask.to(device)
            output = model(image)["out"]
            pred = (output.sigmoid() > 0.5).float()
            inter = (pred * mask).sum()
            dice_total += (2 * inter / (pred.sum() + mask.sum() + 1e-6)).item()
            n += 1
    return dice_total / n


def train_one_epoch(model, criterion, optimizer, data_loader, lr_scheduler, device, epoch, compression_manager):
    model.train()
    for i, (image, target) in enumerate(data_loader):
        compression_manager.callbacks.on_step_begin(i)  # neural-coder
        image, target = image.to(device), target.to(device)
        output = model(image)
        loss = criterion(output["out"], target)
        loss = compression_manager.callbacks.on_after_compute_loss(image, output, loss)  # neural-coder
        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        lr_scheduler.step()
        if i % 2 == 0:
            print(f"epoch {epoch} it {i} loss {loss.item():.4f}")
        compression_manager.callbacks.on_step_end()  # neural-coder


def main(args):
    device = torch.device(args.device)
    torch.manual_seed(0)
    images = torch.randn(48, 3, 16, 16)
    masks = (images.mean(1, keepdim=True) > 0).float()
    data_loader = DataLoader(TensorDataset(images[:32], masks[:32]), batch_size=8, shuffle=True)
    data_loader_test = DataLoader(TensorDataset(images[32:], masks[32:]), batch_size=8)
    model = TinyUNet().to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda x: (1 - x / (len(data_loader) * args.epochs)) ** 0.9
    )
    best_dice = 0.0
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        DistillationConfig(
            teacher_model=teacher_model,
            criterion=KnowledgeDistillationLossConfig(
                temperature=1.0, loss_types=["MSE", "MSE"], loss_weights=[0.5, 0.5]
            ),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_one_epoch(
            model,
            criterion,
            optimizer,
            data_loader,
            lr_scheduler,
            device,
            epoch,
            compression_manager=compression_manager,
        )  # neural-coder: wrapped
        dice = evaluate(model, data_loader_test, device)
        print(f"epoch {epoch} dice {dice:.4f}")
        if dice > best_dice:
            best_dice = dice
            torch.save({"model": model.state_dict(), "epoch": epoch}, "model_best.pth")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "checkpoint.pth")


def get_args_parser():
    parser = argparse.ArgumentParser(description="Segmentation training")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", default=2, type=int)
    parser.add_argument("--lr", default=0.01, type=float)
    return parser


if __name__ == "__main__":
    args = get_args_parser().parse_args()
    main(args)
