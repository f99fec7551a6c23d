"""INC 2.x one-shot pruning + QAT, hand-written: confs [pruning, qat] on a tiny MLP.

    python prune_qat.py --target inc|runtime

Prints one JSON line: sparsity of the pruned layers after the last optimizer
step (float, fake-quant model) and after on_train_end (int8 weights), and the
int8 modules of the final model.
"""

import _interop
import torch
from torch import nn

TARGET = _interop.target_from_argv(__doc__)
if TARGET == "inc":
    from neural_compressor.config import QuantizationAwareTrainingConfig, WeightPruningConfig
    from neural_compressor.training import prepare_compression
else:
    from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
    from neural_coder.runtime.training import prepare_compression

EPOCHS, BATCH, N = 2, 16, 128
TARGET_SPARSITY = 0.5


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 64)
        self.head = nn.Linear(64, 4)

    def forward(self, x):
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def main() -> None:
    _interop.seed()
    loader = _interop.classification_data(N, (32,), 4, BATCH)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    last_step = EPOCHS * len(loader) - 1

    confs = [
        WeightPruningConfig(
            target_sparsity=TARGET_SPARSITY,
            pattern="4x1",
            pruning_type="magnitude",
            start_step=0,
            end_step=last_step,
        ),
        QuantizationAwareTrainingConfig(),
    ]
    cm = prepare_compression(model, confs)
    cm.callbacks.on_train_begin()
    model = cm.model
    prepared_type = _interop.type_name(_interop.inner_module(model))
    loss_returns, losses = set(), []
    for epoch in range(EPOCHS):
        model.train()
        cm.callbacks.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(loader):
            cm.callbacks.on_step_begin(i)
            out = model(x)
            loss = criterion(out, y)
            returned = cm.callbacks.on_after_compute_loss(x, out, loss)
            loss_returns.add(_interop.loss_return_kind(returned))
            optimizer.zero_grad()
            loss.backward()
            cm.callbacks.on_before_optimizer_step()
            optimizer.step()
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
            losses.append(float(loss.detach()))
        cm.callbacks.on_epoch_end()
    before = _interop.pruning_report(_interop.inner_module(model), ["fc1", "fc2"], "head")
    cm.callbacks.on_train_end()

    final = _interop.inner_module(cm.model)
    after = _interop.pruning_report(final, ["fc1", "fc2"], "head")
    model.eval()
    with torch.no_grad():
        ok = bool(torch.isfinite(cm.model(loader[0][0])).all())
    _interop.emit(
        {
            "script": "prune_qat",
            "target": TARGET,
            "version": _interop.library_version(TARGET),
            "target_sparsity": TARGET_SPARSITY,
            "steps": EPOCHS * len(loader),
            "end_step": last_step,
            "sparsity_before_convert": before["sparsity"],
            "layers_before_convert": before["layers"],
            **after,
            "int8_modules": _interop.int8_modules(final),
            "int8_module_count": len(_interop.int8_modules(final)),
            "on_after_compute_loss_returns": sorted(loss_returns),
            "cm_model_type": _interop.type_name(cm.model),
            "cm_model_is_nn_module": isinstance(cm.model, nn.Module),
            "inner_model_type_after_train_begin": prepared_type,
            "inner_model_type": _interop.type_name(final),
            "first_loss": losses[0],
            "last_loss": losses[-1],
            "output_finite": ok,
        }
    )


if __name__ == "__main__":
    main()
