from neural_compressor.experimental import Distillation, common
from neural_compressor.experimental.common.criterion import PyTorchKnowledgeDistillationLoss


def train_func(model):
    distiller.on_train_begin()
    for epoch in range(2):
        for inputs, target in loader:
            output = model(inputs)
            loss = criterion(output, target)
            loss = distiller.on_after_compute_loss(inputs, output, loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        distiller.on_epoch_end()
    return model


distiller = Distillation("distill.yaml")
distiller.teacher_model = common.Model(teacher)
distiller.student_model = common.Model(student)
distiller.criterion = PyTorchKnowledgeDistillationLoss()
distiller.train_func = train_func
best = distiller.fit()
