import torch
import torch.nn.functional as F


def train_one_epoch(model, loader, optimizer, epoch: int, compression_manager) -> float:
    model.train()
    total = 0.0
    for step, (x, y) in enumerate(loader):
        compression_manager.callbacks.on_step_begin(step)  # neural-coder
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        total += loss.item()
        compression_manager.callbacks.on_step_end()  # neural-coder
    return total / len(loader)


@torch.no_grad()
def evaluate(model, loader) -> float:
    model.eval()
    correct = seen = 0
    for x, y in loader:
        correct += (model(x).argmax(dim=1) == y).sum().item()
        seen += y.numel()
    return correct / seen
