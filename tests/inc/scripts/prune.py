"""INC 2.x pruning, hand-written: magnitude, 4x1 blocks, 50 % by the last step.

    python prune.py --target inc|runtime

Prints one JSON line: the sparsity of the pruned layers (the classifier head is
excluded automatically by INC >= 2.2), per step and at the end.
Set INTEROP_SKIP_AFTER_OPTIMIZER_STEP=1 to leave out on_after_optimizer_step
(an experiment: INC advances its pruning schedule only there).
"""

import os

import _interop
import torch
from torch import nn

TARGET = _interop.target_from_argv(__doc__)
if TARGET == "inc":
    from neural_compressor.config import WeightPruningConfig
    from neural_compressor.training import prepare_compression
else:
    from neural_coder.runtime.config import WeightPruningConfig
    from neural_coder.runtime.training import prepare_compression

SKIP_AFTER_STEP = os.environ.get("INTEROP_SKIP_AFTER_OPTIMIZER_STEP") == "1"
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

    conf = WeightPruningConfig(
        target_sparsity=TARGET_SPARSITY,
        pattern="4x1",
        pruning_type="magnitude",
        start_step=0,
        end_step=last_step,
    )
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    model = cm.model
    loss_returns, by_step, losses = set(), [], []
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
            if not SKIP_AFTER_STEP:
                cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
            losses.append(float(loss.detach()))
            report = _interop.pruning_report(_interop.inner_module(model), ["fc1", "fc2"], "head")
            by_step.append(round(report["sparsity"], 4))
        cm.callbacks.on_epoch_end()
    cm.callbacks.on_train_end()

    final = _interop.pruning_report(_interop.inner_module(cm.model), ["fc1", "fc2"], "head")
    with torch.no_grad():
        ok = bool(torch.isfinite(cm.model(loader[0][0])).all())
    _interop.emit(
        {
            "script": "prune",
            "target": TARGET,
            "version": _interop.library_version(TARGET),
            "target_sparsity": TARGET_SPARSITY,
            "steps": EPOCHS * len(loader),
            "end_step": last_step,
            "skipped_after_optimizer_step": SKIP_AFTER_STEP,
            "sparsity_by_step": by_step,
            **final,
            "on_after_compute_loss_returns": sorted(loss_returns),
            "cm_model_type": _interop.type_name(cm.model),
            "cm_model_is_nn_module": isinstance(cm.model, nn.Module),
            "inner_model_type": _interop.type_name(_interop.inner_module(cm.model)),
            "first_loss": losses[0],
            "last_loss": losses[-1],
            "output_finite": ok,
        }
    )


if __name__ == "__main__":
    main()
