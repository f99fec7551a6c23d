# A notebook exported to a script: no functions, the loop runs at module level.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

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

for epoch in range(3):
    mlp.train()
    epoch_loss = 0.0
    for it, (x, y) in enumerate(train_dl):
        out = mlp(x)
        loss = loss_fn(out, y) / grad_accum
        loss.backward()
        if (it + 1) % grad_accum == 0:
            optim.step()
            optim.zero_grad()
        epoch_loss += loss.item()
    scheduler.step()
    print(f"epoch {epoch}: loss {epoch_loss / len(train_dl):.4f}")

mlp.eval()
with torch.no_grad():
    accuracy = (mlp(inputs).argmax(1) == targets).float().mean().item()
print("train accuracy", accuracy)
