"""Fine-tuning with a train and a val phase in every epoch, keeping the best weights.

The layout of the classic transfer-learning tutorial and of many scripts copied from
it: one `train_model()` whose epoch loop runs `for phase in ["train", "val"]`, the
backward and step only in the train phase, the best val weights saved to a file and
loaded back after the last epoch, and the returned model evaluated and saved whole.
Synthetic data keeps it self-contained.
"""

import os
import tempfile

import torch
import torch.nn as nn
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

EPOCHS = int(os.environ.get("EPOCHS", "3"))
OUT = os.environ.get("OUT", "finetuned.pt")


class Classifier(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def make_split(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y)


torch.manual_seed(0)
datasets = {"train": make_split(384, 1), "val": make_split(128, 2)}
dataloaders = {x: DataLoader(datasets[x], batch_size=32, shuffle=x == "train") for x in ["train", "val"]}
dataset_sizes = {x: len(datasets[x]) for x in ["train", "val"]}


def train_model(model, criterion, optimizer, scheduler, num_epochs=EPOCHS):
    with tempfile.TemporaryDirectory() as tempdir:
        best_path = os.path.join(tempdir, "best.pt")
        torch.save(model.state_dict(), best_path)
        best_acc = 0.0
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

        for epoch in range(num_epochs):
            compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
            print(f"Epoch {epoch}/{num_epochs - 1}")
            for phase in ["train", "val"]:
                if phase == "train":
                    model.train()
                else:
                    model.eval()
                running_loss = 0.0
                running_corrects = 0
                for inputs, labels in dataloaders[phase]:
                    if phase == "train":  # neural-coder
                        compression_manager.callbacks.on_step_begin(0)  # neural-coder
                    optimizer.zero_grad()
                    with torch.set_grad_enabled(phase == "train"):
                        outputs = model(inputs)
                        _, preds = torch.max(outputs, 1)
                        loss = criterion(outputs, labels)
                        if phase == "train":
                            loss.backward()
                            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                            optimizer.step()
                            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
                    running_loss += loss.item() * inputs.size(0)
                    running_corrects += torch.sum(preds == labels).item()
                    if phase == "train":  # neural-coder
                        compression_manager.callbacks.on_step_end()  # neural-coder
                if phase == "train":
                    scheduler.step()
                epoch_acc = running_corrects / dataset_sizes[phase]
                print(f"{phase} loss {running_loss / dataset_sizes[phase]:.4f} acc {epoch_acc:.4f}")
                if phase == "val" and epoch_acc > best_acc:
                    best_acc = epoch_acc
                    torch.save(model.state_dict(), best_path)
            compression_manager.callbacks.on_epoch_end()  # neural-coder

        print(f"best val acc {best_acc:.4f}")
        model.load_state_dict(torch.load(best_path))
        compression_manager.callbacks.on_train_end()  # neural-coder
    return model


@torch.no_grad()
def accuracy(model):
    model.eval()
    correct = sum((model(x).argmax(1) == y).sum().item() for x, y in dataloaders["val"])
    return correct / dataset_sizes["val"]


criterion = nn.CrossEntropyLoss()
model_ft = Classifier()
optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.05, momentum=0.9)
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=2, gamma=0.5)
model_ft = train_model(model_ft, criterion, optimizer_ft, exp_lr_scheduler)
print(f"fine-tuned val accuracy: {accuracy(model_ft):.4f}")
torch.save(model_ft, OUT)
reloaded = torch.load(OUT, weights_only=False)
print(f"reloaded val accuracy: {accuracy(reloaded):.4f}")
