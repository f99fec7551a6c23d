"""1.x knowledge distillation where the yaml provides the loss and the optimizer:
the loop asks the component for them (`distiller.criterion(...)`,
`distiller.optimizer`), and uses the deprecated pre/post epoch hook names."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import set_random_seed
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import prepare_compression

torch.manual_seed(0)
x = torch.randn(320, 20)
y = (x[:, :5].sum(1) > 0).long()
train_loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
teacher_model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 2))
student_model = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 2))


def train_func(model):
    distiller.callbacks.on_train_begin()
    for epoch in range(3):
        model.train()
        distiller.callbacks.on_epoch_begin(epoch)
        for step, (inputs, labels) in enumerate(train_loader):
            distiller.callbacks.on_step_begin(step)
            outputs = model(inputs)
            loss = torch.nn.functional.cross_entropy(outputs, labels)
            loss = distiller.callbacks.on_after_compute_loss(inputs, outputs, loss)
            distiller_optimizer.zero_grad()
            loss.backward()
            distiller_optimizer.step()
            distiller.callbacks.on_step_end()
        distiller.callbacks.on_epoch_end()
    distiller.callbacks.on_train_end()


distiller_optimizer = torch.optim.SGD(
    student_model.parameters(),
    lr=0.05,
    momentum=0.9,
    nesterov=True,
    weight_decay=0.0001,
)
distiller_conf = DistillationConfig(
    teacher_model,
    KnowledgeDistillationLossConfig(
        temperature=4.0, loss_types=["CE", "KL"], loss_weights=[0.3, 0.7]
    ),
    optimizer={
        "SGD": {
            "learning_rate": 0.05,
            "momentum": 0.9,
            "nesterov": True,
            "weight_decay": 0.0001,
        }
    },
)
set_random_seed(1234)
distiller = prepare_compression(student_model, distiller_conf)
train_func(distiller.model)
distilled = distiller.model
with torch.no_grad():
    print("student accuracy", (distilled.model(x).argmax(1) == y).float().mean().item())
