"""Functional training style: a generic `run_epochs` loop that takes the step as a
function and calls it with the model and each batch, and a `train_step` closure,
built inside main over its optimizer, that does the forward, backward and update."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


def build_mlp(width: int = 48) -> nn.Module:
    return nn.Sequential(nn.Linear(10, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))


def run_epochs(step_fn, model, loader, epochs, log_every=5):
    compression_manager = prepare_compression(
        model,
        [
            WeightPruningConfig(
                target_sparsity=0.5,
                pattern="4x1",
                pruning_type="snip_momentum",
                pruning_scope="global",
                start_step=1,
                end_step=max(1, int(0.8 * (epochs * len(loader)))),
            ),
            QuantizationAwareTrainingConfig(),
        ],
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        for i, (inputs, targets) in enumerate(loader):
            compression_manager.callbacks.on_step_begin(i)  # neural-coder
            loss = step_fn(model, inputs, targets, compression_manager=compression_manager)
            if i % log_every == 0:
                print(f"epoch {epoch} batch {i}: loss {loss:.4f}")
            compression_manager.callbacks.on_step_end()  # neural-coder
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    return model


def main(epochs: int = 3):
    torch.manual_seed(0)
    inputs = torch.randn(256, 10)
    targets = (inputs[:, :3].sum(dim=1) > 0).long()
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=16, shuffle=True)
    net = build_mlp()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)

    def train_step(model, x, y, compression_manager):
        model.train()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        return loss.item()

    net = run_epochs(train_step, net, loader, epochs)
    net.eval()
    with torch.no_grad():
        accuracy = (net(inputs).argmax(1) == targets).float().mean().item()
    print(f"accuracy {accuracy:.3f}")
    torch.save(net.state_dict(), "closure_model.pt")


if __name__ == "__main__":
    main()
