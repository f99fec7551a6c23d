"""A timm-style epoch function: with `--amp` a loss-scaler object backs up, clips and
steps in one call; without it (the default) the same function calls `loss.backward()`
and `optimizer.step()` itself."""

import argparse
from contextlib import suppress

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.integrations.hooks import optimizer_step_hooks
from neural_coder.runtime.training import prepare_compression


class GradScalerStep:
    """Backward, optional clipping and the optimizer step in one call."""

    def __init__(self) -> None:
        self._scaler = torch.amp.GradScaler("cuda", enabled=torch.cuda.is_available())

    def __call__(self, loss, optimizer, clip_grad=None, parameters=None):
        self._scaler.scale(loss).backward()
        if clip_grad is not None:
            self._scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(parameters, clip_grad)
        self._scaler.step(optimizer)
        self._scaler.update()


def train_one_epoch(epoch, model, loader, optimizer, loss_fn, args, amp_autocast=suppress, loss_scaler=None, compression_manager=None):
    model.train()
    running = 0.0
    for batch_idx, (inputs, target) in enumerate(loader):
        compression_manager.callbacks.on_step_begin(batch_idx)  # neural-coder
        with amp_autocast():
            output = model(inputs)
            loss = loss_fn(output, target)
        optimizer.zero_grad()
        if loss_scaler is not None:
            step_hooks = optimizer_step_hooks(optimizer, compression_manager)  # neural-coder
            loss_scaler(loss, optimizer, clip_grad=args.clip_grad, parameters=model.parameters())
            step_hooks.remove()  # neural-coder
        else:
            loss.backward()
            if args.clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        running += loss.item()
        compression_manager.callbacks.on_step_end()  # neural-coder
    print(f"epoch {epoch}: train loss {running / len(loader):.4f}")


@torch.no_grad()
def validate(model, loader):
    model.eval()
    correct = total = 0
    for inputs, target in loader:
        correct += (model(inputs).argmax(dim=1) == target).sum().item()
        total += target.numel()
    return 100.0 * correct / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--clip-grad", type=float, default=1.0)
    args = parser.parse_args()

    torch.manual_seed(0)
    images = torch.randn(192, 3, 8, 8)
    labels = (images.mean(dim=(1, 2, 3)) > 0).long()
    loader_train = DataLoader(TensorDataset(images[:128], labels[:128]), batch_size=16, shuffle=True)
    loader_eval = DataLoader(TensorDataset(images[128:], labels[128:]), batch_size=32)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    amp_autocast, loss_scaler = suppress, None
    if args.amp:
        amp_autocast, loss_scaler = torch.autocast, GradScalerStep()
    compression_manager = prepare_compression(
        model,
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=max(1, int(0.8 * (args.epochs * len(loader_train)))),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder

    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_one_epoch(epoch, model, loader_train, optimizer, nn.CrossEntropyLoss(), args,
                        amp_autocast=amp_autocast, loss_scaler=loss_scaler, compression_manager=compression_manager)
        print(f"epoch {epoch}: top1 {validate(model, loader_eval):.2f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model.state_dict(), "scaler_or_plain.pt")


if __name__ == "__main__":
    main()
