"""A fine-tuning recipe class: `setup()` builds the model into `self._model`, a
`_loss_step(batch)` method runs the model and returns the loss, and `train()` holds
the epoch loop with gradient accumulation. After training the recipe saves
`self._model` and reports its accuracy on held-out data.
"""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class TinyEncoder(nn.Module):
    def __init__(self, dim=12, hidden=24, labels=4):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.head = nn.Linear(hidden, labels)

    def forward(self, inputs):
        return self.head(torch.relu(self.body(inputs)))


def make_split(n, seed, dim=12, labels=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = (x[:, :labels] + 0.1 * torch.randn(n, labels, generator=g)).argmax(dim=1)
    return TensorDataset(x, y)


class FinetuneRecipe:
    def __init__(self, epochs=3, accumulation=2, lr=5e-3):
        self.total_epochs = epochs
        self._accumulation = accumulation
        self._lr = lr

    def setup(self):
        torch.manual_seed(0)
        self._model = TinyEncoder()
        self._loss_fn = nn.CrossEntropyLoss()
        self._optimizer = torch.optim.AdamW(self._model.parameters(), lr=self._lr)
        self._dataloader = DataLoader(make_split(256, 0), batch_size=16, shuffle=True)
        self._heldout = DataLoader(make_split(128, 1), batch_size=64)
        self._steps_per_epoch = len(self._dataloader) // self._accumulation

    def _loss_step(self, batch):
        inputs, labels = batch
        logits = self._model(inputs)
        return self._loss_fn(logits, labels)

    def train(self):
        self._optimizer.zero_grad()
        for epoch in range(self.total_epochs):
            running = 0.0
            for idx, batch in enumerate(self._dataloader):
                loss = self._loss_step(batch) / self._accumulation
                running += loss.item()
                loss.backward()
                if (idx + 1) % self._accumulation == 0:
                    self._optimizer.step()
                    self._optimizer.zero_grad(set_to_none=True)
            print(f"epoch {epoch} loss {running / self._steps_per_epoch:.4f}")

    @torch.no_grad()
    def accuracy(self):
        model = self._model
        model.eval()
        hits = sum((model(x).argmax(1) == y).sum().item() for x, y in self._heldout)
        return hits / len(self._heldout.dataset)

    def save(self, path):
        torch.save(self._model.state_dict(), path)


if __name__ == "__main__":
    recipe = FinetuneRecipe()
    recipe.setup()
    recipe.train()
    print(f"held-out accuracy: {recipe.accuracy():.4f}")
    recipe.save("recipe_model.pt")
