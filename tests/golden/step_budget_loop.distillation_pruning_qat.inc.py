"""A step-budget training script: a while loop over an iterator, no epochs,
a model factory, gradient clipping, a per-step scheduler and a criterion
object, the way many research scripts are written."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig, QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression

MAX_STEPS = 40


def build_model(width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Linear(16, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 3)
    )


def batches(loader):
    while True:
        yield from loader


def run():
    torch.manual_seed(1)
    x = torch.randn(640, 16)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    network = build_model()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=MAX_STEPS)
    stream = batches(loader)
    step = 0
    teacher_model = copy.deepcopy(network)  # neural-coder
    compression_manager = prepare_compression(
        network,
        [
            DistillationConfig(
                teacher_model=teacher_model,
                criterion=KnowledgeDistillationLossConfig(
                    temperature=1.0, loss_types=["CE", "KL"], loss_weights=[0.5, 0.5]
                ),
            ),
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (MAX_STEPS))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    network = compression_manager.model  # neural-coder
    while step < MAX_STEPS:
        compression_manager.callbacks.on_step_begin(0)  # neural-coder
        inputs, labels = next(stream)
        logits = network(inputs)
        loss = criterion(logits, labels)
        loss = compression_manager.callbacks.on_after_compute_loss(inputs, logits, loss)  # neural-coder
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        scheduler.step()
        step += 1
        compression_manager.callbacks.on_step_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    with torch.no_grad():
        accuracy = (network(x).argmax(1) == y).float().mean().item()
    print(f"accuracy {accuracy:.3f}")
    return network


if __name__ == "__main__":
    run()
