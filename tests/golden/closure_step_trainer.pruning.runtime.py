"""A small hand-rolled trainer class in the style of "build your own trainer"
examples: the optimizer step runs the training step as its closure
(`optimizer.step(partial(self.training_step, ...))`), and steps that only
accumulate gradients call the training step directly."""

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


class TinyClassifier(nn.Module):
    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.body(x))


class StepTrainer:
    def __init__(self, max_epochs: int = 2, grad_accum_steps: int = 1, lr: float = 1e-2) -> None:
        self.max_epochs = max_epochs
        self.grad_accum_steps = grad_accum_steps
        self.lr = lr
        self.global_step = 0
        self.last_loss = None

    def fit(self, model: nn.Module, train_loader: DataLoader) -> None:
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9)
        self.compression_manager = prepare_compression(
            model,
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(
                    1, int(0.8 * (self.max_epochs * len(train_loader) // self.grad_accum_steps))
                ),
            ),
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        for epoch in range(self.max_epochs):
            self.compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            self.train_epoch(model, optimizer, train_loader)
            print(f"epoch {epoch}: loss {self.last_loss:.4f}")
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, train_loader: DataLoader) -> None:
        model.train()
        for batch_idx, batch in enumerate(train_loader):
            self.compression_manager.callbacks.on_step_begin(batch_idx)  # neural-coder
            if (batch_idx + 1) % self.grad_accum_steps == 0:
                # the optimizer runs the forward and backward through the closure
                optimizer.step(partial(self.training_step, model=model, batch=batch))
                self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
                optimizer.zero_grad()
                self.global_step += 1
            else:
                self.training_step(model=model, batch=batch)
            self.compression_manager.callbacks.on_step_end()  # neural-coder

    def training_step(self, model: nn.Module, batch) -> torch.Tensor:
        inputs, targets = batch
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        self.last_loss = loss.item()
        return loss


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for inputs, targets in loader:
            correct += (model(inputs).argmax(dim=1) == targets).sum().item()
            total += targets.numel()
    return correct / total


def main(epochs: int = 3) -> None:
    torch.manual_seed(0)
    inputs = torch.randn(192, 12)
    targets = inputs[:, :3].argmax(dim=1)
    train_loader = DataLoader(TensorDataset(inputs, targets), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(inputs, targets), batch_size=64)
    model = TinyClassifier()
    trainer = StepTrainer(max_epochs=epochs, grad_accum_steps=2)
    trainer.fit(model, train_loader)
    print(f"accuracy {evaluate(model, val_loader):.3f}")
    torch.save(model.state_dict(), "closure_trainer.pt")


if __name__ == "__main__":
    main()
