"""A home-made Trainer class: fit() -> _run_epoch() -> _run_batch(), with an AMP-style scaler."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression


class SmallConvNet(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 12, 3, padding=1),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(12, 24, 3, padding=1),
            nn.BatchNorm2d(24),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(24, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class Trainer:
    def __init__(self, model, train_data, lr=2e-2, max_epochs=2):
        self.model = model
        self.train_data = train_data
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
        self.scaler = torch.amp.GradScaler("cpu", enabled=False)
        self.max_epochs = max_epochs
        self.criterion = nn.CrossEntropyLoss()

    def _run_batch(self, images, labels):
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", enabled=False):
            logits = self.model(images)
            loss = self.criterion(logits, labels)
            loss = self.compression_manager.callbacks.on_after_compute_loss(images, logits, loss)  # neural-coder
        self.scaler.scale(loss).backward()
        self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        self.scaler.step(self.optimizer)
        self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        self.scaler.update()
        return loss.item()

    def _run_epoch(self, epoch):
        losses = []
        for images, labels in self.train_data:
            self.compression_manager.callbacks.on_step_begin(0)  # neural-coder
            losses.append(self._run_batch(images, labels))
            self.compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"[epoch {epoch}] mean loss {sum(losses) / len(losses):.4f}")

    def fit(self):
        teacher_model = copy.deepcopy(self.model)  # neural-coder
        self.compression_manager = prepare_compression(
            self.model,
            DistillationConfig(
                teacher_model=teacher_model,
                criterion=KnowledgeDistillationLossConfig(
                    temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
                ),
            ),
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        for epoch in range(self.max_epochs):
            self.compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            self._run_epoch(epoch)
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder


def make_loader(n=192, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=g)
    y = (x[:, 1].mean(dim=(1, 2)) > 0).long() + (x[:, 2].mean(dim=(1, 2)) > 0.2).long()
    return DataLoader(TensorDataset(x, y), batch_size=24, shuffle=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    trainer = Trainer(SmallConvNet(), make_loader())
    trainer.fit()
    torch.save(trainer.model.state_dict(), "small_convnet.pt")
