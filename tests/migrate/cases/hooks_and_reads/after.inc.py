import os
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression

HERE = os.path.dirname(__file__)


def train(model):
    for x, y in loader:
        prune.callbacks.on_step_begin(0)  # neural-coder
        out = model(x)
        # TODO(neural-coder): `prune.on_after_compute_loss()` only changes the loss with distillation; 2.x returns [] here, use your own loss
        prune.on_after_compute_loss(x, out, criterion(out, y))
        loss = criterion(out, y)
        loss.backward()
        prune.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        prune.callbacks.on_after_optimizer_step()  # neural-coder


def distill_train(model):
    for x, y in loader:
        out = model(x)
        loss = distiller.callbacks.on_after_compute_loss(x, out, criterion(out, y))
        loss.backward()
        optimizer.step()


prune_conf = WeightPruningConfig(
    target_sparsity=0.5,
    pruning_type="magnitude",
    pattern="1x1",
    start_step=0,
    end_step=4,
)
prune = prepare_compression(model, prune_conf)
prune.callbacks.on_train_begin()
model = prune.model
train(model)
prune.callbacks.on_train_end()
prune.model.save("./pruned")

distiller_conf = DistillationConfig(
    teacher,
    KnowledgeDistillationLossConfig(
        temperature=2.0, loss_types=["CE", "CE"], loss_weights=[0.5, 0.5]
    ),
)
distiller = prepare_compression(student, distiller_conf)
distiller.callbacks.on_train_begin()
student = distiller.model
distill_train(student)
distiller.callbacks.on_train_end()
result = distiller.model
print(student)
