"""torchvision-reference style: train_one_epoch(model, criterion, optimizer,
data_loader, epoch, args) with keyword arguments at the call site, an
evaluate() helper, a config object instead of argparse, and an EMA-free
checkpoint at the end."""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig, QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression


@dataclass
class Config:
    epochs: int = 2
    lr: float = 0.1
    batch_size: int = 32
    print_freq: int = 5


class SmallResidual(nn.Module):
    def __init__(self, channels: int = 8, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = x + self.block(x)
        return self.fc(x.mean(dim=(2, 3)))


def train_one_epoch(model, criterion, optimizer, data_loader, epoch, cfg, compression_manager):
    model.train()
    for i, (image, target) in enumerate(data_loader):
        compression_manager.callbacks.on_step_begin(i)  # neural-coder
        output = model(image)
        loss = criterion(output, target)
        loss = compression_manager.callbacks.on_after_compute_loss(image, output, loss)  # neural-coder
        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        if i % cfg.print_freq == 0:
            print(f"[{epoch}] {i}/{len(data_loader)} loss={loss.item():.3f}")
        compression_manager.callbacks.on_step_end()  # neural-coder


def evaluate(model, data_loader):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for image, target in data_loader:
            correct += (model(image).argmax(1) == target).sum().item()
    return correct / len(data_loader.dataset)


def main(cfg: Config) -> None:
    torch.manual_seed(0)
    images = torch.randn(320, 3, 8, 8)
    labels = images.flatten(1).sum(1).gt(0).long() * 2
    train_loader = DataLoader(
        TensorDataset(images, labels), batch_size=cfg.batch_size, shuffle=True
    )
    val_loader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=64)
    model = SmallResidual()
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-4)
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        [
            DistillationConfig(
                teacher_model=teacher_model,
                criterion=KnowledgeDistillationLossConfig(
                    temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
                ),
            ),
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (cfg.epochs * len(train_loader)))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(cfg.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_one_epoch(
            model,
            criterion,
            optimizer,
            data_loader=train_loader,
            epoch=epoch,
            cfg=cfg,
            compression_manager=compression_manager,
        )  # neural-coder: wrapped
        print(f"epoch {epoch} acc {evaluate(model, val_loader):.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model.state_dict(), "small_residual.pt")


if __name__ == "__main__":
    main(Config())
