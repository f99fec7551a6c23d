"""A Kaggle-style k-fold run over tabular dict batches: `run_training(model, optimizer,
scheduler, device, num_epochs, fold)` keeps the best weights in memory (and on disk) when
the validation loss improves, loads them back after its epochs and returns `model,
history`; the fold loop rebinds both and deletes them before the next fold. Synthetic
data keeps it self-contained.
"""

import copy
import gc
import os
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

CONFIG = {
    "seed": 42,
    "epochs": int(os.environ.get("EPOCHS", "2")),
    "train_batch_size": 16,
    "valid_batch_size": 32,
    "learning_rate": 1e-3,
    "scheduler": "CosineAnnealingLR",
    "min_lr": 1e-6,
    "T_max": 20,
    "weight_decay": 1e-6,
    "n_fold": int(os.environ.get("N_FOLD", "3")),
    "n_accumulate": 1,
    "num_classes": 1,
    "device": torch.device("cuda:0" if torch.cuda.is_available() else "cpu"),
}


def set_seed(seed=42):
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


set_seed(CONFIG["seed"])

X = np.random.randn(120, 10).astype(np.float32)
y = (X[:, 0] * 0.7 - X[:, 1] > 0).astype(np.float32)
kfold = np.arange(120) % CONFIG["n_fold"]


class TabDataset(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return {"features": torch.tensor(self.X[index]), "target": torch.tensor(self.y[index])}


class TabModel(nn.Module):
    def __init__(self, n_in, num_classes):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.fc = nn.Linear(64, num_classes)

    def forward(self, features):
        return self.fc(self.mlp(features))


def criterion(outputs, targets):
    return nn.BCEWithLogitsLoss()(outputs.view(-1), targets.view(-1))


def train_one_epoch(model, optimizer, scheduler, dataloader, device, epoch):
    model.train()
    dataset_size = 0
    running_loss = 0.0
    bar = tqdm(enumerate(dataloader), total=len(dataloader), disable=True)
    for step, data in bar:
        features = data["features"].to(device, dtype=torch.float)
        targets = data["target"].to(device, dtype=torch.float)
        batch_size = features.size(0)
        outputs = model(features)
        loss = criterion(outputs, targets)
        loss = loss / CONFIG["n_accumulate"]
        loss.backward()
        if (step + 1) % CONFIG["n_accumulate"] == 0:
            optimizer.step()
            optimizer.zero_grad()
            if scheduler is not None:
                scheduler.step()
        running_loss += loss.item() * batch_size
        dataset_size += batch_size
        epoch_loss = running_loss / dataset_size
        bar.set_postfix(Epoch=epoch, Train_Loss=epoch_loss, LR=optimizer.param_groups[0]["lr"])
    gc.collect()
    return epoch_loss


@torch.inference_mode()
def valid_one_epoch(model, dataloader, device, epoch):
    model.eval()
    dataset_size = 0
    running_loss = 0.0
    bar = tqdm(enumerate(dataloader), total=len(dataloader), disable=True)
    for step, data in bar:
        features = data["features"].to(device, dtype=torch.float)
        targets = data["target"].to(device, dtype=torch.float)
        batch_size = features.size(0)
        outputs = model(features)
        loss = criterion(outputs, targets)
        running_loss += loss.item() * batch_size
        dataset_size += batch_size
        epoch_loss = running_loss / dataset_size
        bar.set_postfix(Epoch=epoch, Valid_Loss=epoch_loss)
    gc.collect()
    return epoch_loss


def run_training(model, optimizer, scheduler, device, num_epochs, fold):
    start = time.time()
    best_model_wts = copy.deepcopy(model.state_dict())
    best_epoch_loss = np.inf
    history = defaultdict(list)
    for epoch in range(1, num_epochs + 1):
        gc.collect()
        train_epoch_loss = train_one_epoch(
            model,
            optimizer,
            scheduler,
            dataloader=train_loader,
            device=CONFIG["device"],
            epoch=epoch,
        )
        val_epoch_loss = valid_one_epoch(model, valid_loader, device=CONFIG["device"], epoch=epoch)
        history["Train Loss"].append(train_epoch_loss)
        history["Valid Loss"].append(val_epoch_loss)
        if val_epoch_loss <= best_epoch_loss:
            print(f"Validation Loss Improved ({best_epoch_loss} ---> {val_epoch_loss})")
            best_epoch_loss = val_epoch_loss
            best_model_wts = copy.deepcopy(model.state_dict())
            PATH = f"Loss-Fold-{fold}.bin"
            torch.save(model.state_dict(), PATH)
            print("Model Saved")
    end = time.time()
    print(f"Training complete in {end - start:.0f}s; best loss {best_epoch_loss:.4f}")
    model.load_state_dict(best_model_wts)
    return model, history


def prepare_loaders(fold):
    trn = kfold != fold
    val = kfold == fold
    train_loader = DataLoader(
        TabDataset(X[trn], y[trn]),
        batch_size=CONFIG["train_batch_size"],
        shuffle=True,
        drop_last=True,
    )
    valid_loader = DataLoader(
        TabDataset(X[val], y[val]), batch_size=CONFIG["valid_batch_size"], shuffle=False
    )
    return train_loader, valid_loader


def fetch_scheduler(optimizer):
    if CONFIG["scheduler"] == "CosineAnnealingLR":
        scheduler = lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=CONFIG["T_max"], eta_min=CONFIG["min_lr"]
        )
    elif CONFIG["scheduler"] is None:
        return None
    return scheduler


for fold in range(0, CONFIG["n_fold"]):
    print(f"====== Fold: {fold} ======")
    train_loader, valid_loader = prepare_loaders(fold=fold)
    model = TabModel(10, CONFIG["num_classes"])
    model.to(CONFIG["device"])
    optimizer = torch.optim.Adam(
        model.parameters(), lr=CONFIG["learning_rate"], weight_decay=CONFIG["weight_decay"]
    )
    scheduler = fetch_scheduler(optimizer)
    model, history = run_training(
        model, optimizer, scheduler, device=CONFIG["device"], num_epochs=CONFIG["epochs"], fold=fold
    )
    del model, history
    _ = gc.collect()
    print()
