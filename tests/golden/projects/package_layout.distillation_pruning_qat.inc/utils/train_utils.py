"""One epoch of training and a validation pass, shared by the project's scripts."""

import torch

from .meters import AverageMeter


def train_epoch(epoch, model, loader, criterion, optimizer, log_every=10, compression_manager=None):
    model.train()
    losses = AverageMeter()
    for batch_idx, (inputs, targets) in enumerate(loader):
        compression_manager.callbacks.on_step_begin(batch_idx)  # neural-coder
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss = compression_manager.callbacks.on_after_compute_loss(
            inputs, outputs, loss
        )  # neural-coder
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        losses.update(loss.item(), inputs.size(0))
        if batch_idx % log_every == 0:
            print(f"epoch {epoch} [{batch_idx}/{len(loader)}] loss {losses.avg:.4f}")
        compression_manager.callbacks.on_step_end()  # neural-coder
    return losses.avg


def validate(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for inputs, targets in loader:
            correct += (model(inputs).argmax(dim=1) == targets).sum().item()
    return correct / len(loader.dataset)
