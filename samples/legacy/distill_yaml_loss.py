"""1.x knowledge distillation where the yaml provides the loss and the optimizer:
the loop asks the component for them (`distiller.criterion(...)`,
`distiller.optimizer`), and uses the deprecated pre/post epoch hook names."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Distillation, common
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(320, 20)
y = (x[:, :5].sum(1) > 0).long()
train_loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
teacher_model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 2))
student_model = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 2))


def train_func(model):
    distiller.pre_epoch_begin()
    for epoch in range(3):
        model.train()
        distiller.on_epoch_begin(epoch)
        for step, (inputs, labels) in enumerate(train_loader):
            distiller.on_step_begin(step)
            outputs = model(inputs)
            loss = distiller.criterion(outputs, labels)
            loss = distiller.on_after_compute_loss(inputs, outputs, loss)
            distiller.optimizer.zero_grad()
            loss.backward()
            distiller.optimizer.step()
            distiller.on_step_end()
        distiller.on_epoch_end()
    distiller.post_epoch_end()


distiller = Distillation("distill_kd.yaml")
distiller.teacher_model = common.Model(teacher_model)
distiller.student_model = common.Model(student_model)
distiller.train_func = train_func
distilled = distiller.fit()
with torch.no_grad():
    print("student accuracy", (distilled.model(x).argmax(1) == y).float().mean().item())
