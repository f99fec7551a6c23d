import torch
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_compressor.training import prepare_compression


def train(model):
    for inputs, labels in loader:
        out = model(inputs)
        loss = torch.nn.functional.mse_loss(out, labels)
        loss = distiller.callbacks.on_after_compute_loss(inputs, out, loss)
        distiller_optimizer.zero_grad()
        loss.backward()
        distiller_optimizer.step()


distiller_optimizer = torch.optim.Adam(
    student.parameters(), lr=0.0005, betas=(0.8, 0.999), eps=1e-07, amsgrad=True
)
distiller_conf = DistillationConfig(
    teacher,
    KnowledgeDistillationLossConfig(
        temperature=1.5, loss_types=["MSE", "MSE"], loss_weights=[0.5, 0.5]
    ),
    optimizer={"Adam": {"learning_rate": 0.0005, "beta_1": 0.8, "amsgrad": True}},
)
distiller = prepare_compression(student, distiller_conf)
distiller.callbacks.on_train_begin()
student = distiller.model
train(student)
distiller.callbacks.on_train_end()
student = distiller.model
