"""A tutorial-style file with two training loops: a teacher is trained first, then the
student that is to be compressed; `# neural-coder: train` marks the student's loop."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

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
for epoch in range(3):  # neural-coder: train
    for xb, yb in loader:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(student(xb), yb)
        loss.backward()
        opt.step()
torch.save(student.state_dict(), "student.pt")
