from neural_compressor.experimental import Distillation, common
from neural_compressor.experimental.common.criterion import PyTorchKnowledgeDistillationLoss as KDLoss


def train_func(model):
    for epoch in range(epochs):
        distiller.on_epoch_begin(epoch)
        for teacher_logits, inputs, target in train_loader:
            output = model(inputs)
            loss = distiller.criterion(output, target)
            loss = distiller.on_after_compute_loss(inputs, output, loss, teacher_logits)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        distiller.on_epoch_end()
        if distiller.best_score > 0.99:
            break


kd_loss = KDLoss(2.0, ["MSE", "KL"], [0.4, 0.6], student_model=student)
distiller = Distillation("kd.yaml")
distiller.teacher_model = common.Model(teacher)
distiller.student_model = common.Model(student)
distiller.criterion = kd_loss
distiller.optimizer = optimizer
distiller.train_func = train_func
distiller.eval_func = evaluate
model = distiller()
