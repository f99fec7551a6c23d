"""A trainer class in the style of detection frameworks: `_do_train()` first calls
`_setup_train()`, which builds the model, the loader, the optimizer, the AMP scaler and
an exponential moving average (EMA) of the model; the batch loop backpropagates the
scaled loss and, once enough batches have accumulated, calls `self.optimizer_step()`
(unscale, clip, step, zero the gradients, update the EMA). Each epoch validates the EMA
and saves it in half precision.

Synthetic data keeps it self-contained.
"""

import argparse
import math
from copy import deepcopy

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


class ModelEMA:
    def __init__(self, model, decay=0.9999, tau=20):
        self.ema = deepcopy(model).eval()
        self.updates = 0
        self.decay = lambda x: decay * (1 - math.exp(-x / tau))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model):
        self.updates += 1
        d = self.decay(self.updates)
        msd = model.state_dict()
        with torch.no_grad():
            for k, v in self.ema.state_dict().items():
                if v.dtype.is_floating_point:
                    v *= d
                    v += (1 - d) * msd[k].detach()


class Net(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(12, 48), nn.SiLU(), nn.Linear(48, 48), nn.SiLU())
        self.head = nn.Linear(48, classes)

    def forward(self, x):
        return self.head(self.backbone(x))


class Trainer:
    def __init__(self, args):
        self.args = args
        self.epochs = args.epochs
        self.batch_size = args.batch
        self.nbs = args.nbs  # nominal batch size: gradients accumulate up to it
        self.best_fitness = None

    def _setup_train(self):
        torch.manual_seed(0)
        x = torch.randn(320, 12)
        y = x[:, :4].argmax(1)
        self.train_loader = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=self.batch_size, shuffle=True)
        self.val_loader = DataLoader(TensorDataset(x[256:], y[256:]), batch_size=32)
        self.model = Net()
        self.accumulate = max(round(self.nbs / self.batch_size), 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        self.scaler = torch.amp.GradScaler("cpu", enabled=self.args.amp)
        self.ema = ModelEMA(self.model)
        self.criterion = nn.CrossEntropyLoss()

    def optimizer_step(self):
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema:
            self.ema.update(self.model)

    def validate(self):
        model = self.ema.ema
        correct = total = 0
        with torch.no_grad():
            for x, y in self.val_loader:
                correct += (model(x).argmax(1) == y).sum().item()
                total += len(y)
        return correct / total

    def save_model(self, epoch):
        ckpt = {"epoch": epoch, "best_fitness": self.best_fitness, "ema": deepcopy(self.ema.ema).half().state_dict()}
        torch.save(ckpt, self.args.save)

    def _do_train(self):
        self._setup_train()
        nb = len(self.train_loader)
        last_opt_step = -1
        self.optimizer.zero_grad()
        self.compression_manager = prepare_compression(
            self.model,
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (self.epochs * len(self.train_loader)))),
            ),
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        self.compression_manager.track_copy(self.ema)  # neural-coder
        for epoch in range(self.epochs):
            self.compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            self.model.train()
            for i, (x, y) in enumerate(self.train_loader):
                self.compression_manager.callbacks.on_step_begin(i)  # neural-coder
                ni = i + nb * epoch
                loss = self.criterion(self.model(x), y)
                self.scaler.scale(loss).backward()
                if ni - last_opt_step >= self.accumulate:
                    self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                    self.optimizer_step()
                    self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
                    last_opt_step = ni
                self.compression_manager.callbacks.on_step_end()  # neural-coder
            fitness = self.validate()
            if self.best_fitness is None or fitness > self.best_fitness:
                self.best_fitness = fitness
            self.save_model(epoch)
            print(f"epoch {epoch}: EMA accuracy {fitness:.3f}")
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--nbs", type=int, default=16)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--save", default="last.pt")
    Trainer(parser.parse_args())._do_train()
