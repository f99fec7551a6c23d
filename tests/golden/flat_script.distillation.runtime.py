# Exported from a notebook: everything runs at module level.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(0)
features = torch.randn(1024, 20)
labels = (features[:, :5].sum(dim=1) > 0).long()
dataset = TensorDataset(features, labels)
loader = DataLoader(dataset, batch_size=64, shuffle=True)

net = nn.Sequential(
    nn.Linear(20, 128),
    nn.ReLU(),
    nn.Linear(128, 128),
    nn.ReLU(),
    nn.Linear(128, 2),
)
criterion = nn.CrossEntropyLoss()
opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
accumulation_steps = 2
teacher_model = copy.deepcopy(net)  # neural-coder
compression_manager = prepare_compression(
    net,
    DistillationConfig(
        teacher_model=teacher_model,
        criterion=KnowledgeDistillationLossConfig(
            temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
        ),
    ),
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder

for ep in range(4):
    compression_manager.callbacks.on_epoch_begin(ep)  # neural-coder
    net.train()
    running = 0.0
    for i, (xb, yb) in enumerate(loader):
        compression_manager.callbacks.on_step_begin(i)  # neural-coder
        logits = net(xb)
        loss = criterion(logits, yb) / accumulation_steps
        loss = (
            compression_manager.callbacks.on_after_compute_loss(
                xb, logits, loss * accumulation_steps
            )
            / accumulation_steps
        )  # neural-coder
        loss.backward()
        if (i + 1) % accumulation_steps == 0:
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            opt.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            opt.zero_grad()
        running += loss.item()
        compression_manager.callbacks.on_step_end()  # neural-coder
    sched.step()
    print("epoch", ep, "loss", running / len(loader))
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder

net.eval()
with torch.no_grad():
    acc = (net(features).argmax(1) == labels).float().mean().item()
print("train accuracy", acc)
