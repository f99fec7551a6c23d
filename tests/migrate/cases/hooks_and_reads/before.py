import os

from neural_compressor.experimental import Distillation, Pruning, common

HERE = os.path.dirname(__file__)


def train(model):
    for x, y in loader:
        out = model(x)
        prune.on_after_compute_loss(x, out, criterion(out, y))
        loss = criterion(out, y)
        loss.backward()
        optimizer.step()


def distill_train(model):
    for x, y in loader:
        distiller.on_post_forward(x)
        out = model(x)
        loss = distiller.on_after_compute_loss(x, out, criterion(out, y))
        loss.backward()
        optimizer.step()


prune = Pruning(os.path.join(HERE, "p.yaml"))
prune.model = common.Model(model)
prune.train_func = train
prune.fit()
prune.model.save("./pruned")

distiller = Distillation(os.path.join(os.path.dirname(__file__), "d.yaml"))
distiller.student_model = common.Model(student)
distiller.teacher_model = common.Model(teacher)
distiller.train_func = distill_train
result = distiller.fit()
print(distiller.student_model)
