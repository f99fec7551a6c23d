"""INC 2.x quantization-aware training, hand-written: a tiny CNN, default config.

    python qat.py --target inc|runtime

Prints one JSON line: the int8 modules of the final model, what cm.model is
before/after on_train_begin and on_train_end, whether the optimizer built on the
float model still trains the prepared model, and whether the int8 model runs.
"""

import _interop
import torch
from torch import nn

TARGET = _interop.target_from_argv(__doc__)
if TARGET == "inc":
    from neural_compressor.config import QuantizationAwareTrainingConfig
    from neural_compressor.training import prepare_compression
else:
    from neural_coder.runtime.config import QuantizationAwareTrainingConfig
    from neural_coder.runtime.training import prepare_compression

EPOCHS, BATCH, N = 2, 16, 128


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def main() -> None:
    _interop.seed()
    loader = _interop.classification_data(N, (3, 8, 8), 4, BATCH)
    raw = CNN()
    model = raw
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    seen = {"cm_model_type_before_train_begin": _interop.type_name(cm.model)}
    cm.callbacks.on_train_begin()
    model = cm.model
    prepared = _interop.inner_module(model)
    seen["cm_model_type_after_train_begin"] = _interop.type_name(model)
    seen["inner_model_type_after_train_begin"] = _interop.type_name(prepared)
    # does the optimizer built on the float model train the prepared model?
    fc_before = _interop.weight_layers(prepared)
    fc_before = {k: v.clone() for k, v in fc_before.items()}
    optimizer_params = {id(p) for g in optimizer.param_groups for p in g["params"]}
    prepared_params = [p for p in prepared.parameters() if p.requires_grad]
    shared = sum(id(p) in optimizer_params for p in prepared_params)

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
    fc_after = _interop.weight_layers(_interop.inner_module(model))
    changed = sorted(
        k for k in fc_before if k in fc_after and not torch.equal(fc_before[k], fc_after[k])
    )
    cm.callbacks.on_train_end()

    final = _interop.inner_module(cm.model)
    model.eval()
    with torch.no_grad():
        out_wrapper = model(loader[0][0])  # the name the script kept since on_train_begin
        out_final = cm.model(loader[0][0])
    _interop.emit(
        {
            "script": "qat",
            "target": TARGET,
            "version": _interop.library_version(TARGET),
            **seen,
            "cm_model_type_after_train_end": _interop.type_name(cm.model),
            "inner_model_type_after_train_end": _interop.type_name(final),
            "cm_model_is_nn_module": isinstance(cm.model, nn.Module),
            "kept_reference_is_cm_model": model is cm.model,
            "int8_modules": _interop.int8_modules(final),
            "int8_module_count": len(_interop.int8_modules(final)),
            "raw_model_int8_module_count": len(_interop.int8_modules(raw)),
            "prepared_trainable_params": len(prepared_params),
            "prepared_params_in_user_optimizer": shared,
            "layers_changed_by_training": changed,
            "on_after_compute_loss_returns": sorted(loss_returns),
            "first_loss": losses[0],
            "last_loss": losses[-1],
            "output_finite": bool(torch.isfinite(out_final).all()),
            "kept_reference_output_finite": bool(torch.isfinite(out_wrapper).all()),
        }
    )


if __name__ == "__main__":
    main()
