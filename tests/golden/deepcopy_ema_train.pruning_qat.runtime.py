"""A classifier trained with a hand-rolled exponential moving average (EMA) of its weights:
no EMA class, just `ema_model = copy.deepcopy(model)` and a small function that moves the
copy's parameters towards the model's after every optimizer step (and copies its
buffers). The copy is what the script reports, saves and reloads after training.

Synthetic data keeps it self-contained.
"""

import argparse
import copy

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression


class Classifier(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Linear(16, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        self.classifier = nn.Linear(width, 4)

    def forward(self, x):
        return self.classifier(self.features(x))


@torch.no_grad()
def update_ema(ema_model, model, decay):
    ema_params = list(ema_model.parameters())
    model_params = list(model.parameters())
    torch._foreach_lerp_(ema_params, model_params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema_model.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


@torch.no_grad()
def accuracy(model, loader):
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--ema-decay", type=float, default=0.9)
    parser.add_argument("--output", default="ema_classifier.pt")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(384, 16)
    y = x[:, :4].argmax(1)
    train_loader = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[320:], y[320:]), batch_size=32)

    model = Classifier()
    compression_manager = prepare_compression(
        model,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=1,
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    ema_model = copy.deepcopy(model).eval()
    compression_manager.track_copy(ema_model)  # neural-coder
    ema_model.requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit_pruning_schedules(
        compression_manager.callbacks, max(1, int(0.8 * (args.epochs * len(train_loader))))
    )  # neural-coder

    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        model.train()
        for inputs, targets in train_loader:
            compression_manager.callbacks.on_step_begin(0)  # neural-coder
            loss = nn.functional.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            update_ema(ema_model, model, args.ema_decay)
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: loss {loss.item():.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    ema_model = compression_manager.converted_copy(ema_model)  # neural-coder

    ema_accuracy = accuracy(ema_model, val_loader)
    print(f"ema accuracy {ema_accuracy:.3f}")
    torch.save(ema_model.state_dict(), args.output)


if __name__ == "__main__":
    main()
