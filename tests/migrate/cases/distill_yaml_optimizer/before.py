from neural_compressor.experimental import Distillation, common


def train(model):
    for inputs, labels in loader:
        out = model(inputs)
        loss = distiller.criterion(out, labels)
        loss = distiller.on_after_compute_loss(inputs, out, loss)
        distiller.optimizer.zero_grad()
        loss.backward()
        distiller.optimizer.step()


distiller = Distillation("opt.yaml")
distiller.teacher_model = teacher
distiller.student_model = student
distiller.train_func = train
student = distiller.fit()
