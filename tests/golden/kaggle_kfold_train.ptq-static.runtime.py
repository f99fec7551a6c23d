"""A Kaggle-style k-fold training kernel: a `CFG` settings class, `seed_everything`, an
`AverageMeter`, `train_fn` / `valid_fn` helpers (a tqdm bar over `enumerate(loader)`,
a GradScaler and autocast behind `CFG.apex`, gradient accumulation, gradient clipping,
OneCycleLR stepped per optimizer step) and `train_loop(folds, fold)`, which builds each
fold's model, optimizer and scheduler, keeps the fold's best checkpoint with its
predictions and hands back the out-of-fold predictions. Synthetic images keep it
self-contained.
"""

# ====================================================
# Library
# ====================================================
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion


# ====================================================
# CFG
# ====================================================
class CFG:
    debug = False
    apex = False
    print_freq = 5
    num_workers = 0
    size = 8
    epochs = int(os.environ.get("EPOCHS", "2"))
    lr = 3e-3
    min_lr = 1e-6
    weight_decay = 1e-6
    batch_size = 16
    gradient_accumulation_steps = 2
    max_grad_norm = 1000
    seed = 42
    target_size = 3
    n_fold = int(os.environ.get("N_FOLD", "3"))
    trn_fold = list(range(n_fold))
    train = True
    OUTPUT_DIR = "./"


device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed=42):
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    torch.backends.cudnn.deterministic = True


seed_everything(seed=CFG.seed)


def get_score(y_true, y_pred):
    return float((y_true == y_pred).mean())


class AverageMeter:
    """Computes and stores the average and current value"""

    def __init__(self):
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


# ====================================================
# Data
# ====================================================
rng = np.random.RandomState(CFG.seed)
N = 96
images = rng.randn(N, 3, CFG.size, CFG.size).astype(np.float32)
labels = (images[:, 0].mean(axis=(1, 2)) > 0).astype(np.int64) + (
    images[:, 1].mean(axis=(1, 2)) > 0.05
)
folds = np.arange(N) % CFG.n_fold
rng.shuffle(folds)


class TrainDataset(Dataset):
    def __init__(self, images, labels):
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        image = torch.from_numpy(self.images[idx])
        label = torch.tensor(self.labels[idx]).long()
        return image, label


# ====================================================
# MODEL
# ====================================================
class CustomModel(nn.Module):
    def __init__(self, cfg, pretrained=False):
        super().__init__()
        self.cfg = cfg
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2),
            nn.BatchNorm2d(32),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, cfg.target_size)

    def forward(self, x):
        features = self.backbone(x)
        pooled = self.pool(features).flatten(1)
        output = self.fc(pooled)
        return output


# ====================================================
# Helper functions
# ====================================================
def train_fn(train_loader, model, criterion, optimizer, epoch, scheduler, device):
    model.train()
    scaler = torch.cuda.amp.GradScaler(enabled=CFG.apex)
    losses = AverageMeter()
    global_step = 0
    pbar = tqdm(enumerate(train_loader), total=len(train_loader), disable=True)
    for step, (images, labels) in pbar:
        images = images.to(device)
        labels = labels.to(device)
        batch_size = labels.size(0)
        with torch.autocast(device_type=device.type, enabled=CFG.apex):
            y_preds = model(images)
            loss = criterion(y_preds, labels)
        if CFG.gradient_accumulation_steps > 1:
            loss = loss / CFG.gradient_accumulation_steps
        losses.update(loss.item(), batch_size)
        scaler.scale(loss).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CFG.max_grad_norm)
        if (step + 1) % CFG.gradient_accumulation_steps == 0:
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
            global_step += 1
            scheduler.step()
        pbar.set_postfix(
            loss=f"{losses.avg:.4f}",
            grad=f"{grad_norm:.2f}",
            lr=f"{scheduler.get_last_lr()[0]:.6f}",
        )
    return losses.avg


def valid_fn(valid_loader, model, criterion, device):
    losses = AverageMeter()
    model.eval()
    preds = []
    for step, (images, labels) in enumerate(valid_loader):
        images = images.to(device)
        labels = labels.to(device)
        batch_size = labels.size(0)
        with torch.no_grad():
            y_preds = model(images)
        loss = criterion(y_preds, labels)
        losses.update(loss.item(), batch_size)
        preds.append(y_preds.softmax(1).to("cpu").numpy())
    predictions = np.concatenate(preds)
    return losses.avg, predictions


# ====================================================
# Train loop
# ====================================================
def train_loop(folds, fold):
    print(f"========== fold: {fold} training ==========")
    trn_idx = np.where(folds != fold)[0]
    val_idx = np.where(folds == fold)[0]
    valid_labels = labels[val_idx]

    train_dataset = TrainDataset(images[trn_idx], labels[trn_idx])
    valid_dataset = TrainDataset(images[val_idx], labels[val_idx])

    train_loader = DataLoader(
        train_dataset,
        batch_size=CFG.batch_size,
        shuffle=True,
        num_workers=CFG.num_workers,
        drop_last=True,
    )
    valid_loader = DataLoader(
        valid_dataset,
        batch_size=CFG.batch_size * 2,
        shuffle=False,
        num_workers=CFG.num_workers,
        drop_last=False,
    )

    model = CustomModel(CFG, pretrained=True)
    model.to(device)

    optimizer = torch.optim.AdamW(model.parameters(), lr=CFG.lr, weight_decay=CFG.weight_decay)
    num_train_steps = int(len(train_loader) / CFG.gradient_accumulation_steps * CFG.epochs)
    scheduler = OneCycleLR(optimizer, max_lr=CFG.lr, total_steps=num_train_steps + 1, pct_start=0.1)

    criterion = nn.CrossEntropyLoss()

    best_score = 0.0

    for epoch in range(CFG.epochs):
        start_time = time.time()

        # train
        avg_loss = train_fn(train_loader, model, criterion, optimizer, epoch, scheduler, device)

        # eval
        avg_val_loss, preds = valid_fn(valid_loader, model, criterion, device)

        # scoring
        score = get_score(valid_labels, preds.argmax(1))

        elapsed = time.time() - start_time

        print(
            f"Epoch {epoch + 1} - avg_train_loss: {avg_loss:.4f}  avg_val_loss: {avg_val_loss:.4f}  time: {elapsed:.0f}s"
        )
        print(f"Epoch {epoch + 1} - Score: {score:.4f}")

        if score >= best_score:
            best_score = score
            print(f"Epoch {epoch + 1} - Save Best Score: {best_score:.4f} Model")
            torch.save(
                {"model": model.state_dict(), "preds": preds},
                CFG.OUTPUT_DIR + f"fold{fold}_best.pth",
            )
    quantized_model = quantization.fit(
        model,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(
                criterion="relative", tolerable_loss=0.01, higher_is_better=False
            ),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=valid_loader,
        eval_func=lambda candidate: valid_fn(valid_loader, candidate, criterion, device)[0],
    )  # neural-coder
    model = quantized_model if quantized_model is not None else model  # neural-coder
    if quantized_model is not None:  # neural-coder
        quantized_model.save(f"neural_coder_output/ptq-static/fold{fold}")  # neural-coder

    valid_preds = torch.load(CFG.OUTPUT_DIR + f"fold{fold}_best.pth", weights_only=False)["preds"]
    torch.cuda.empty_cache()
    return val_idx, valid_preds


def get_result(oof_labels, oof_preds):
    score = get_score(oof_labels, oof_preds.argmax(1))
    print(f"Score: {score:<.4f}")


if __name__ == "__main__":
    if CFG.train:
        oof_preds = np.zeros((N, CFG.target_size), dtype=np.float32)
        for fold in range(CFG.n_fold):
            if fold in CFG.trn_fold:
                val_idx, _oof = train_loop(folds, fold)
                oof_preds[val_idx] = _oof
                print(f"========== fold: {fold} result ==========")
                get_score(labels[val_idx], _oof.argmax(1))
        print("========== CV ==========")
        get_result(labels, oof_preds)
        np.save(CFG.OUTPUT_DIR + "oof_df.npy", oof_preds)
