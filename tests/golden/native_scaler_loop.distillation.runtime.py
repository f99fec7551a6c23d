"""Train with a timm-style loss scaler: `loss_scaler(loss, optimizer, ...)` runs the backward,
clips the gradients and steps the optimizer in one call (gradient accumulation included)."""
import argparse

import torch
from torch import nn
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.integrations.hooks import optimizer_step_hooks
from neural_coder.runtime.training import prepare_compression


class NativeScaler:
    """The AMP helper of timm / DeiT / MAE: backward, unscale, clip, step, update."""

    state_dict_key = "amp_scaler"

    def __init__(self, enabled=False):
        self._scaler = torch.amp.GradScaler("cuda", enabled=enabled)

    def __call__(self, loss, optimizer, clip_grad=None, parameters=None, update_grad=True):
        self._scaler.scale(loss).backward()
        if update_grad:
            if clip_grad is not None:
                self._scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
            self._scaler.step(optimizer)
            self._scaler.update()


class PatchClassifier(nn.Module):
    def __init__(self, dim=32, classes=5):
        super().__init__()
        self.embed = nn.Linear(48, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 64), nn.GELU(), nn.Linear(64, dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        h = self.embed(x)
        return self.head(h + self.mlp(h))


def train_one_epoch(model, criterion, data_loader, optimizer, loss_scaler, accum_iter, clip, compression_manager):
    model.train()
    optimizer.zero_grad()
    for data_iter_step, (samples, targets) in enumerate(data_loader):
        compression_manager.callbacks.on_step_begin(data_iter_step)  # neural-coder
        outputs = model(samples)
        loss = criterion(outputs, targets)
        loss = loss / accum_iter
        loss = (
            compression_manager.callbacks.on_after_compute_loss(samples, outputs, loss * accum_iter)
            / accum_iter
        )  # neural-coder
        step_hooks = optimizer_step_hooks(optimizer, compression_manager)  # neural-coder
        loss_scaler(
            loss,
            optimizer,
            clip_grad=clip,
            parameters=model.parameters(),
            update_grad=(data_iter_step + 1) % accum_iter == 0,
        )
        step_hooks.remove()  # neural-coder
        if (data_iter_step + 1) % accum_iter == 0:
            optimizer.zero_grad()
        compression_manager.callbacks.on_step_end()  # neural-coder


@torch.no_grad()
def evaluate(model, data_loader):
    model.eval()
    correct = total = 0
    for samples, targets in data_loader:
        correct += (model(samples).argmax(-1) == targets).sum().item()
        total += targets.numel()
    return correct / total


def synthetic(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 48, generator=g)
    return torch.utils.data.TensorDataset(x, x[:, :5].argmax(dim=1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--accum_iter", type=int, default=2)
    parser.add_argument("--clip_grad", type=float, default=1.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    train_loader = torch.utils.data.DataLoader(synthetic(512, 0), batch_size=16, shuffle=True)
    val_loader = torch.utils.data.DataLoader(synthetic(128, 1), batch_size=32)

    model = PatchClassifier()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loss_scaler = NativeScaler()
    teacher_model = copy.deepcopy(model)  # neural-coder
    compression_manager = prepare_compression(
        model,
        DistillationConfig(
            teacher_model=teacher_model,
            criterion=KnowledgeDistillationLossConfig(
                temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
            ),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_one_epoch(
            model, criterion, train_loader, optimizer, loss_scaler, args.accum_iter, args.clip_grad, compression_manager=compression_manager
        )
        print(f"epoch {epoch}: accuracy {evaluate(model, val_loader):.3f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    torch.save(model.state_dict(), "patch_classifier.pt")


if __name__ == "__main__":
    main()
