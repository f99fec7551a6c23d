"""A fine-tuning recipe class: `setup()` builds the model into `self._model`, a
`_loss_step(batch)` method runs the model and returns the loss, and `train()` holds
the epoch loop with gradient accumulation. After training the recipe saves
`self._model` and reports its accuracy on held-out data.
"""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


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
        self.compression_manager = prepare_compression(
            self._model,
            [
                WeightPruningConfig(
                    target_sparsity=0.5,
                    pattern="4x1",
                    pruning_type="snip_momentum",
                    pruning_scope="global",
                    start_step=1,
                    end_step=max(
                        1,
                        int(
                            0.8 * (self.total_epochs * len(self._dataloader) // self._accumulation)
                        ),
                    ),
                ),
                QuantizationAwareTrainingConfig(),
            ],
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        self._model = self.compression_manager.model  # neural-coder
        for epoch in range(self.total_epochs):
            self.compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            running = 0.0
            for idx, batch in enumerate(self._dataloader):
                self.compression_manager.callbacks.on_step_begin(idx)  # neural-coder
                loss = self._loss_step(batch) / self._accumulation
                running += loss.item()
                loss.backward()
                if (idx + 1) % self._accumulation == 0:
                    self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                    self._optimizer.step()
                    self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
                    self._optimizer.zero_grad(set_to_none=True)
                self.compression_manager.callbacks.on_step_end()  # neural-coder
            print(f"epoch {epoch} loss {running / self._steps_per_epoch:.4f}")
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder

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
