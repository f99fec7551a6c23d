"""Full-batch-ish training with L-BFGS, as its users write it: the forward and
backward live in a local `closure()` that `optimizer.step(closure)` calls (L-BFGS
calls it several times per step)."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression


def make_data(n: int = 256):
    x = torch.randn(n, 8)
    y = torch.sin(x[:, :2].sum(dim=1, keepdim=True)) + 0.1 * x[:, 2:3]
    return x, y


def main(epochs: int = 3) -> None:
    torch.manual_seed(0)
    x, y = make_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    criterion = nn.MSELoss()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4, history_size=10)
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
        for step, (inputs, targets) in enumerate(loader):
            compression_manager.callbacks.on_step_begin(step)  # neural-coder

            def closure():
                optimizer.zero_grad()
                outputs = model(inputs)  # noqa: B023 - the closure runs within this iteration
                loss = criterion(outputs, targets)  # noqa: B023
                loss.backward()
                compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                return loss

            loss = optimizer.step(closure)
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: loss {loss.item():.5f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder

    model.eval()
    with torch.no_grad():
        mse = criterion(model(x), y).item()
    print(f"mse {mse:.5f}")
    torch.save(model.state_dict(), "lbfgs_model.pt")


if __name__ == "__main__":
    main()
