"""Train and evaluate functions of the project, kept apart from main.py as the
detection and DeiT references do."""

import math
import sys

import torch


def train_one_epoch(model, criterion, data_loader, optimizer, device, epoch, max_norm=0.0, compression_manager=None):
    model.train()
    running = 0.0
    for step, (samples, targets) in enumerate(data_loader):
        compression_manager.callbacks.on_step_begin(step)  # neural-coder
        samples = samples.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        outputs = model(samples)
        loss = criterion(outputs, targets)
        loss = compression_manager.callbacks.on_after_compute_loss(
            samples, outputs, loss
        )  # neural-coder
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            print(f"Loss is {loss_value}, stopping training")
            sys.exit(1)
        optimizer.zero_grad()
        loss.backward()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        running += loss_value
        compression_manager.callbacks.on_step_end()  # neural-coder
    print(f"epoch {epoch}: mean loss {running / max(1, len(data_loader)):.4f}")
    return {"loss": running / max(1, len(data_loader))}


@torch.no_grad()
def evaluate(data_loader, model, device):
    model.eval()
    correct = total = 0
    for samples, targets in data_loader:
        outputs = model(samples.to(device))
        correct += (outputs.argmax(-1) == targets.to(device)).sum().item()
        total += targets.numel()
    return {"acc1": 100.0 * correct / max(1, total)}
