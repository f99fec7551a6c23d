"""A tutorial-style file with two training loops: a teacher is trained first, then the
student that is to be compressed; `# neural-coder: train` marks the student's loop."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(0)
x = torch.randn(256, 12)
y = (x[:, :3].sum(dim=1) > 0).long()
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)


def train(model, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()


teacher = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 2))
train(teacher, 1)

student = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9)
compression_manager = prepare_compression(
    student,
    WeightPruningConfig(
        target_sparsity=0.5,
        pattern="4x1",
        pruning_type="snip_momentum",
        pruning_scope="global",
        start_step=1,
        end_step=max(1, int(0.8 * (3 * len(loader)))),
    ),
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder
for epoch in range(3):  # neural-coder: train
    compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
    for xb, yb in loader:
        compression_manager.callbacks.on_step_begin(0)  # neural-coder
        opt.zero_grad()
        loss = nn.functional.cross_entropy(student(xb), yb)
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        opt.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        compression_manager.callbacks.on_step_end()  # neural-coder
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder
torch.save(student.state_dict(), "student.pt")
