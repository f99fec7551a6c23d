"""Train a small grid detector, starting from the checkpoint named by --weights.

In the style of detection training scripts: the run starts from pretrained weights
when `--weights` names a `.pt` file (the default), and from scratch with
`--weights ''`; the options are unpacked at the top of train().
"""

import argparse
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression

ROOT = Path(__file__).resolve().parent


class GridDetector(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, 5 + num_classes, 1)

    def forward(self, images):
        return self.head(self.stem(images))


def detection_loss(pred, targets):
    objectness = nn.functional.binary_cross_entropy_with_logits(pred[:, 4], targets[:, 0])
    return objectness + pred[:, :4].pow(2).mean() * 0.01


def train(opt):
    epochs, batch_size, weights, save_dir = (
        opt.epochs,
        opt.batch_size,
        opt.weights,
        Path(opt.save_dir),
    )
    model = GridDetector()
    pretrained = str(weights).endswith(".pt")
    if pretrained:
        ckpt = torch.load(weights, map_location="cpu")
        model.load_state_dict(ckpt["model"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(16, 3, 8, 8)
    targets = (torch.rand(16, 1, 8, 8) > 0.8).float()
    loader = DataLoader(TensorDataset(images, targets), batch_size=batch_size, shuffle=True)
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

    for epoch in range(epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for i, (imgs, tgts) in enumerate(loader):
            compression_manager.callbacks.on_step_begin(i)  # neural-coder
            pred = model(imgs)
            loss = detection_loss(pred, tgts)
            loss = compression_manager.callbacks.on_after_compute_loss(imgs, pred, loss)  # neural-coder
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            optimizer.zero_grad()
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: loss {loss.item():.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    save_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, save_dir / "last.pt")


def parse_opt():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=str, default=ROOT / "detector_pretrained.pt")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--save-dir", default="runs/train")
    return parser.parse_args()


if __name__ == "__main__":
    train(parse_opt())
