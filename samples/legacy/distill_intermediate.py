"""1.x intermediate-layer distillation with the loss built in code (flat 1.x
layer mappings) inside a main(), the loop in a function that gets the component."""

import torch
import torch.nn as nn
from neural_compressor.experimental import Distillation, common
from neural_compressor.experimental.common.criterion import (
    PyTorchIntermediateLayersKnowledgeDistillationLoss,
)
from torch.utils.data import DataLoader, TensorDataset


def make(width):
    return nn.Sequential(
        nn.Linear(12, width), nn.ReLU(), nn.Linear(width, 12), nn.ReLU(), nn.Linear(12, 3)
    )


def run_epochs(model, loader, optimizer, compressor, epochs):
    for _ in range(epochs):
        model.train()
        for inputs, labels in loader:
            compressor.on_step_begin(0)
            outputs = model(inputs)
            loss = nn.functional.cross_entropy(outputs, labels)
            loss = compressor.on_after_compute_loss(inputs, outputs, loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        compressor.on_epoch_end()
    return model


def main():
    torch.manual_seed(0)
    x = torch.randn(192, 12)
    y = torch.randint(0, 3, (192,))
    loader = DataLoader(TensorDataset(x, y), batch_size=24)
    teacher, student = make(48), make(16)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)

    distiller = Distillation("distill_il.yaml")
    distiller.teacher_model = common.Model(teacher)
    distiller.student_model = common.Model(student)
    distiller.criterion = PyTorchIntermediateLayersKnowledgeDistillationLoss(
        layer_mappings=[["2", "2"], ["4", "4"]],
        loss_types=["MSE", "MSE"],
        loss_weights=[0.5, 0.5],
        add_origin_loss=True,
    )
    distiller.train_func = lambda model: run_epochs(model, loader, optimizer, distiller, 2)
    return distiller.fit()


if __name__ == "__main__":
    result = main()
