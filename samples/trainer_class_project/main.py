"""Trains a small MLP classifier with the project's Trainer (trainer.py)."""

from types import SimpleNamespace

import torch
import torch.nn as nn
from torch.utils.data import TensorDataset
from trainer import Trainer


class MLP(nn.Module):
    def __init__(self, n_in=16, hidden=32, n_out=3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, n_out))

    def forward(self, x):
        return self.net(x)


def make_dataset(n=256):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 16, generator=generator)
    y = (x[:, :3].argmax(dim=1)).long()
    return TensorDataset(x, y)


def batch_end_callback(trainer):
    if trainer.iter_num % 10 == 0:
        print(f"iter {trainer.iter_num}: loss {trainer.loss.item():.4f}")


if __name__ == "__main__":
    torch.manual_seed(0)
    config = SimpleNamespace(learning_rate=3e-3, batch_size=32, epochs=3, grad_norm_clip=1.0)
    model = MLP()
    trainer = Trainer(config, model, make_dataset())
    trainer.add_callback("on_batch_end", batch_end_callback)
    trainer.run()
    trainer.model.eval()
    torch.save(trainer.model.state_dict(), "mlp.pt")
