"""INC 2.x knowledge distillation, hand-written: a wider teacher MLP, the
default KnowledgeDistillationLossConfig (CE to labels, CE to the teacher, 0.5/0.5).

    python distill.py --target inc|runtime

Prints one JSON line: whether the loss returned by on_after_compute_loss
differed from the plain loss, what it returned, and whether the teacher stayed
untouched.
"""

import _interop
import torch
from torch import nn

TARGET = _interop.target_from_argv(__doc__)
if TARGET == "inc":
    from neural_compressor.config import DistillationConfig, KnowledgeDistillationLossConfig
    from neural_compressor.training import prepare_compression
else:
    from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
    from neural_coder.runtime.training import prepare_compression

EPOCHS, BATCH, N = 2, 16, 128


def mlp(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(32, hidden), nn.ReLU(), nn.Linear(hidden, 4))


def main() -> None:
    _interop.seed()
    loader = _interop.classification_data(N, (32,), 4, BATCH)
    teacher = mlp(128)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    model = mlp(16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    conf = DistillationConfig(teacher, KnowledgeDistillationLossConfig())
    cm = prepare_compression(model, conf)
    cm.callbacks.on_train_begin()
    model = cm.model
    kinds, plain, distilled = set(), [], []
    for epoch in range(EPOCHS):
        model.train()
        cm.callbacks.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(loader):
            cm.callbacks.on_step_begin(i)
            out = model(x)
            loss = criterion(out, y)
            plain.append(float(loss.detach()))
            returned = cm.callbacks.on_after_compute_loss(x, out, loss)
            kinds.add(_interop.loss_return_kind(returned))
            loss = returned
            distilled.append(float(loss.detach()))
            optimizer.zero_grad()
            loss.backward()
            cm.callbacks.on_before_optimizer_step()
            optimizer.step()
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
        cm.callbacks.on_epoch_end()
    cm.callbacks.on_train_end()

    differs = [abs(p - d) > 1e-6 for p, d in zip(plain, distilled)]
    teacher_unchanged = all(
        torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_state.items()
    )
    _interop.emit(
        {
            "script": "distill",
            "target": TARGET,
            "version": _interop.library_version(TARGET),
            "steps": len(plain),
            "distillation_active": all(differs),
            "steps_where_loss_differs": sum(differs),
            "on_after_compute_loss_returns": sorted(kinds),
            "plain_loss_first": plain[0],
            "distilled_loss_first": distilled[0],
            "distilled_loss_last": distilled[-1],
            "teacher_unchanged": teacher_unchanged,
            "teacher_training_mode": teacher.training,
            "cm_model_type": _interop.type_name(cm.model),
            "cm_model_is_nn_module": isinstance(cm.model, nn.Module),
            "inner_model_type": _interop.type_name(_interop.inner_module(cm.model)),
        }
    )


if __name__ == "__main__":
    main()
