from neural_compressor.config import DistillationConfig, SelfKnowledgeDistillationLossConfig
from neural_compressor.training import prepare_compression


def train_func(model):
    for image, target in train_loader:
        outputs = model(image)
        loss = outputs["loss"]
        loss = distiller.callbacks.on_after_compute_loss(image, outputs, loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


distiller_conf = DistillationConfig(
    model,
    SelfKnowledgeDistillationLossConfig(
        layer_mappings=[
            [["resblock.1.feature.output", "resblock.deepst.feature.output"]],
            [["resblock.1.fc", "resblock.deepst.fc"]],
        ],
        temperature=3.0,
        loss_types=["L2", "CE"],
        loss_weights=[0.03, 0.3],
        add_origin_loss=True,
    ),
)
distiller = prepare_compression(model, distiller_conf)
distiller.callbacks.on_train_begin()
model = distiller.model
train_func(model)
distiller.callbacks.on_train_end()
