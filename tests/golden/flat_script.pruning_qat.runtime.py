# A notebook exported to a script: no functions, the loop runs at module level.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(7)
inputs = torch.randn(768, 24)
targets = (inputs[:, ::3].sum(dim=1) > 0).long()
train_ds = TensorDataset(inputs, targets)
train_dl = DataLoader(train_ds, batch_size=48, shuffle=True)

mlp = nn.Sequential(
    nn.Linear(24, 96),
    nn.GELU(),
    nn.Linear(96, 96),
    nn.GELU(),
    nn.Linear(96, 2),
)
loss_fn = nn.CrossEntropyLoss()
optim = torch.optim.Adam(mlp.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optim, gamma=0.8)
grad_accum = 3
compression_manager = prepare_compression(
    mlp,
    [
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=max(1, int(0.8 * (3 * len(train_dl) // grad_accum))),
        ),
        QuantizationAwareTrainingConfig(),
    ],
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder
mlp = compression_manager.model  # neural-coder

for epoch in range(3):
    compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
    mlp.train()
    epoch_loss = 0.0
    for it, (x, y) in enumerate(train_dl):
        compression_manager.callbacks.on_step_begin(it)  # neural-coder
        out = mlp(x)
        loss = loss_fn(out, y) / grad_accum
        loss.backward()
        if (it + 1) % grad_accum == 0:
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optim.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            optim.zero_grad()
        epoch_loss += loss.item()
        compression_manager.callbacks.on_step_end()  # neural-coder
    scheduler.step()
    print(f"epoch {epoch}: loss {epoch_loss / len(train_dl):.4f}")
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder

mlp.eval()
with torch.no_grad():
    accuracy = (mlp(inputs).argmax(1) == targets).float().mean().item()
print("train accuracy", accuracy)
