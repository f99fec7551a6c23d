import torch
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_compressor.training import prepare_compression


def train_func(model):
    for epoch in range(epochs):
        distiller.callbacks.on_epoch_begin(epoch)
        for teacher_logits, inputs, target in train_loader:
            output = model(inputs)
            loss = torch.nn.functional.mse_loss(output, target)
            loss = distiller.callbacks.on_after_compute_loss(inputs, output, loss, teacher_logits)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        distiller.callbacks.on_epoch_end()
        # TODO(neural-coder): `distiller.best_score`: 2.x distillation keeps no best model / score; track it in your own code
        if distiller.best_score > 0.99:
            break


kd_loss = KnowledgeDistillationLossConfig(
    temperature=2.0, loss_types=["MSE", "KL"], loss_weights=[0.4, 0.6]
)
# TODO(neural-coder): `distiller.eval_func = evaluate`: 1.x evaluated every epoch and returned the best model; 2.x returns the last one: evaluate and keep the best yourself; removed
distiller_conf = DistillationConfig(teacher, kd_loss)
distiller = prepare_compression(student, distiller_conf)
distiller.callbacks.on_train_begin()
student = distiller.model
train_func(student)
distiller.callbacks.on_train_end()
model = distiller.model
