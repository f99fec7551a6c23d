import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


class TinyCNN(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        return self.head(self.body(x).flatten(1))


class Trainer:
    def __init__(self, model, train_data, lr=1e-2, max_epochs=2):
        self.model = model
        self.train_data = train_data
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        self.scaler = torch.amp.GradScaler("cpu", enabled=False)
        self.max_epochs = max_epochs
        self.loss_fn = nn.CrossEntropyLoss()

    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        with torch.autocast("cpu", enabled=False):
            output = self.model(source)
            loss = self.loss_fn(output, targets)
        self.scaler.scale(loss).backward()
        self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        self.scaler.step(self.optimizer)
        self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        self.scaler.update()
        return loss.item()

    def _run_epoch(self, epoch):
        total = 0.0
        for source, targets in self.train_data:
            self.compression_manager.callbacks.on_step_begin(0)  # neural-coder
            total += self._run_batch(source, targets)
            self.compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch} loss {total / len(self.train_data):.4f}")

    def fit(self):
        self.compression_manager = prepare_compression(
            self.model,
            [
                WeightPruningConfig(
                    target_sparsity=0.5,
                    pattern="4x1",
                    pruning_type="snip_momentum",
                    pruning_scope="global",
                    start_step=1,
                    end_step=max(1, int(0.8 * (self.max_epochs * len(self.train_data)))),
                ),
                QuantizationAwareTrainingConfig(),
            ],
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        self.model = self.compression_manager.model  # neural-coder
        for epoch in range(self.max_epochs):
            self.compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            self._run_epoch(epoch)
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder


def build_loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, 12, 12, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    trainer = Trainer(TinyCNN(), build_loader())
    trainer.fit()
    torch.save(trainer.model.state_dict(), "tiny_cnn.pt")
