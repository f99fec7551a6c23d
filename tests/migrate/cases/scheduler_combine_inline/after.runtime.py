from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig, QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


def train_func(model):
    for epoch in range(3):
        for step, (x, y) in enumerate(train_loader):
            agent.callbacks.on_step_begin(step)
            out = model(x)
            loss = agent.callbacks.on_after_compute_loss(x, out, criterion(out, y))
            loss.backward()
            agent.callbacks.on_before_optimizer_step()
            optimizer.step()
            agent.callbacks.on_after_optimizer_step()  # neural-coder
            optimizer.zero_grad()
            agent.callbacks.on_step_end()


steps_per_epoch = len(train_loader)
prune_conf = WeightPruningConfig(
    target_sparsity=0.97,
    pruning_type="pattern_lock",
    pattern="1x1",
    start_step=0,
    end_step=0,
    pruning_scope="local",
    pruning_frequency=steps_per_epoch,
    sparsity_decay_type="linear",
)
distiller_conf = DistillationConfig(teacher, KnowledgeDistillationLossConfig(temperature=2.0))
quantizer_conf = QuantizationAwareTrainingConfig(model_name="m")
agent = prepare_compression(model, [prune_conf, distiller_conf, quantizer_conf])
agent.callbacks.on_train_begin()
model = agent.model
train_func(model)
agent.callbacks.on_train_end()
optimized = agent.model
