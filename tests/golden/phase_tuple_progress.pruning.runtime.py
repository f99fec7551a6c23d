"""Train and valid phases in one loop over a tuple, a `training` flag derived from the
phase, progress bars around the phase's loader, a warmup scheduler stepped per batch and
gradient clipping between the backward and the step."""

import contextlib

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(0)
x = torch.randn(300, 8)
y = (x[:, 0] > 0).long()
dataloaders = {
    "train": DataLoader(TensorDataset(x[:240], y[:240]), batch_size=24, shuffle=True),
    "valid": DataLoader(TensorDataset(x[240:], y[240:]), batch_size=24),
}
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 5))
compression_manager = prepare_compression(
    model,
    WeightPruningConfig(
        target_sparsity=0.5,
        pattern="4x1",
        pruning_type="snip_momentum",
        pruning_scope="global",
        start_step=1,
        end_step=max(1, int(0.8 * (3 * len(dataloaders["train"])))),
    ),
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder

for epoch in range(3):
    compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
    for phase in ("train", "valid"):
        training = phase == "train"
        model.train(training)
        ctx = contextlib.nullcontext() if training else torch.no_grad()
        with ctx:
            for inputs, labels in tqdm(dataloaders[phase], desc=phase):
                if training:  # neural-coder
                    compression_manager.callbacks.on_step_begin(0)  # neural-coder
                outputs = model(inputs)
                loss = criterion(outputs, labels)
                if training:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                    optimizer.step()
                    compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
                    scheduler.step()
                if training:  # neural-coder
                    compression_manager.callbacks.on_step_end()  # neural-coder
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder
torch.save(model, "phase_tqdm.pt")
