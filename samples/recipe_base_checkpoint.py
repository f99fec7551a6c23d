"""A fine-tuning recipe class in the style of single-device fine-tuning recipes:
`setup()` reads the base checkpoint (a state dict) and hands it to `_setup_model`,
which builds the model and always loads it; the data loaders come from a
`_setup_data` method and live on `self`. Resuming reloads into the model only when
asked. `train()` holds the epoch loop; afterwards the recipe reports its held-out
accuracy and saves `self._model`.
"""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class TinyClassifier(nn.Module):
    def __init__(self, dim=16, hidden=32, labels=4):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.output = nn.Linear(hidden, labels)

    def forward(self, inputs):
        return self.output(torch.relu(self.encoder(inputs)))


def synthetic_split(n, seed, dim=16, labels=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = (x[:, :labels] + 0.1 * torch.randn(n, labels, generator=g)).argmax(dim=1)
    return TensorDataset(x, y)


class FinetuneRecipeSingleDevice:
    def __init__(self, cfg):
        self._cfg = cfg
        self._resume = cfg.resume is not None
        self.total_epochs = cfg.epochs

    def setup(self):
        torch.manual_seed(0)
        state_dict = torch.load(self._cfg.base_checkpoint, weights_only=True)
        self._model = self._setup_model(model_state_dict=state_dict)
        if self._resume:
            self._model.load_state_dict(torch.load(self._cfg.resume, weights_only=True))
        self._loss_fn = nn.CrossEntropyLoss()
        self._optimizer = torch.optim.AdamW(self._model.parameters(), lr=self._cfg.lr)
        self._dataloader = self._setup_data(synthetic_split(256, 0), shuffle=True)
        self._val_dataloader = self._setup_data(synthetic_split(128, 1), shuffle=False)

    def _setup_model(self, model_state_dict):
        model = TinyClassifier()
        model.load_state_dict(model_state_dict)
        return model

    def _setup_data(self, dataset, shuffle):
        sampler = torch.utils.data.RandomSampler(dataset) if shuffle else None
        dataloader = DataLoader(dataset, batch_size=self._cfg.batch_size, sampler=sampler)
        return dataloader

    def train(self):
        for epoch in range(self.total_epochs):
            self._model.train()
            running = 0.0
            for inputs, labels in self._dataloader:
                logits = self._model(inputs)
                loss = self._loss_fn(logits, labels)
                loss.backward()
                self._optimizer.step()
                self._optimizer.zero_grad(set_to_none=True)
                running += loss.item()
            print(f"epoch {epoch} loss {running / len(self._dataloader):.4f}")

    @torch.no_grad()
    def accuracy(self):
        self._model.eval()
        hits = sum((self._model(x).argmax(1) == y).sum().item() for x, y in self._val_dataloader)
        return hits / len(self._val_dataloader.dataset)

    def save_checkpoint(self, path):
        torch.save(self._model.state_dict(), path)


def recipe_main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base_checkpoint", default="base_model.pt")
    parser.add_argument("--resume", default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", default="finetuned.pt")
    cfg = parser.parse_args()
    recipe = FinetuneRecipeSingleDevice(cfg)
    recipe.setup()
    recipe.train()
    print(f"held-out accuracy: {recipe.accuracy():.4f}")
    recipe.save_checkpoint(cfg.out)


if __name__ == "__main__":
    recipe_main()
