from neural_compressor.config import DistillationConfig, IntermediateLayersKnowledgeDistillationLossConfig
from neural_compressor.training import prepare_compression

distiller_conf = DistillationConfig(
    teacher,
    IntermediateLayersKnowledgeDistillationLossConfig(
        layer_mappings=[
            [["bert.encoder.layer.0.attention", "1"]],
            [["bert.encoder.layer.1"], ["bert.encoder.layer.3"]],
            [
                ["bert.encoder.layer.2.output", "0"],
                ["bert.encoder.layer.5.output", "0"],
            ],
            [["classifier"]],
        ],
        loss_types=["KL", "MSE", "MSE", "L1"],
        loss_weights=[0.25, 0.25, 0.25, 0.25],
        add_origin_loss=False,
    ),
)
distiller = prepare_compression(student, distiller_conf)
distiller.callbacks.on_train_begin()
student = distiller.model
train_func(student)
distiller.callbacks.on_train_end()
distilled = distiller.model
