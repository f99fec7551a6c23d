"""A course-style trainer class: the training and validation steps are closures built
by factory methods and kept on the instance (`self.train_step_fn =
self._make_train_step_fn()`), and one mini-batch loop runs whichever of them a
`validation` flag picks."""

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression


class StepwiseTrainer:
    def __init__(self, model, loss_fn, optimizer):
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.train_loader = None
        self.val_loader = None
        self.losses = []
        self.val_losses = []
        self.total_epochs = 0
        self.train_step_fn = self._make_train_step_fn()
        self.val_step_fn = self._make_val_step_fn()

    def set_loaders(self, train_loader, val_loader=None):
        self.train_loader = train_loader
        self.val_loader = val_loader

    def _make_train_step_fn(self):
        def perform_train_step_fn(x, y):
            self.compression_manager.callbacks.on_step_begin(0)  # neural-coder
            self.model.train()
            yhat = self.model(x)
            loss = self.loss_fn(yhat, y)
            loss = self.compression_manager.callbacks.on_after_compute_loss(x, yhat, loss)  # neural-coder
            loss.backward()
            self.compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            self.optimizer.step()
            self.compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            self.optimizer.zero_grad()
            self.compression_manager.callbacks.on_step_end()  # neural-coder
            return loss.item()

        return perform_train_step_fn

    def _make_val_step_fn(self):
        def perform_val_step_fn(x, y):
            self.model.eval()
            yhat = self.model(x)
            return self.loss_fn(yhat, y).item()

        return perform_val_step_fn

    def _mini_batch(self, validation=False):
        if validation:
            data_loader = self.val_loader
            step_fn = self.val_step_fn
        else:
            data_loader = self.train_loader
            step_fn = self.train_step_fn
        if data_loader is None:
            return None
        batch_losses = []
        for x_batch, y_batch in data_loader:
            x_batch = x_batch.to(self.device)
            y_batch = y_batch.to(self.device)
            batch_losses.append(step_fn(x_batch, y_batch))
        return np.mean(batch_losses)

    def train(self, n_epochs, seed=42):
        torch.manual_seed(seed)
        teacher_model = copy.deepcopy(self.model)  # neural-coder
        self.compression_manager = prepare_compression(
            self.model,
            DistillationConfig(
                teacher_model=teacher_model,
                criterion=KnowledgeDistillationLossConfig(
                    temperature=1.0, loss_types=["MSE", "MSE"], loss_weights=[0.5, 0.5]
                ),
            ),
        )  # neural-coder
        self.compression_manager.callbacks.on_train_begin()  # neural-coder
        for _ in range(n_epochs):
            self.compression_manager.callbacks.on_epoch_begin(_)  # neural-coder
            self.total_epochs += 1
            self.losses.append(self._mini_batch(validation=False))
            with torch.no_grad():
                self.val_losses.append(self._mini_batch(validation=True))
            print(f"epoch {self.total_epochs}: loss {self.losses[-1]:.4f} val {self.val_losses[-1]:.4f}")
            self.compression_manager.callbacks.on_epoch_end()  # neural-coder
        self.compression_manager.callbacks.on_train_end()  # neural-coder

    def predict(self, x):
        self.model.eval()
        with torch.no_grad():
            return self.model(torch.as_tensor(x).float().to(self.device)).cpu().numpy()

    def save_checkpoint(self, filename):
        torch.save(
            {"epoch": self.total_epochs, "model_state_dict": self.model.state_dict(), "loss": self.losses},
            filename,
        )


torch.manual_seed(13)
features = torch.randn(320, 10)
targets = (features[:, :3].sum(dim=1, keepdim=True) > 0).float()
train_loader = DataLoader(TensorDataset(features[:256], targets[:256]), batch_size=16, shuffle=True)
val_loader = DataLoader(TensorDataset(features[256:], targets[256:]), batch_size=32)

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
trainer = StepwiseTrainer(model, nn.BCEWithLogitsLoss(), optimizer)
trainer.set_loaders(train_loader, val_loader)
trainer.train(n_epochs=3)
print(trainer.predict(features[:4].numpy()).round(3).tolist())
trainer.save_checkpoint("stepwise_checkpoint.pt")
