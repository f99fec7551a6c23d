"""Image-classification training in the style of large training frameworks: the batch
loop defines small `_forward` / `_backward` helpers, called on both paths of a
`no_sync()` choice; gradients accumulate over `--grad-accum-steps` batches
(`need_update`), a callable loss scaler steps the optimizer under `--amp`, and an
optional moving average of the model is evaluated and saved.

Synthetic data keeps it self-contained."""
# ruff: noqa: B023 - the helpers read this batch's names, as such frameworks' do
import argparse
import copy
import shutil
from contextlib import suppress

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.integrations.hooks import optimizer_step_hooks
from neural_coder.runtime.training import prepare_compression


class NativeScaler:
    def __init__(self):
        self._scaler = torch.amp.GradScaler("cpu", enabled=False)

    def __call__(self, loss, optimizer, clip_grad=None, parameters=None, need_update=True):
        self._scaler.scale(loss).backward()
        if need_update:
            if clip_grad is not None:
                self._scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
            self._scaler.step(optimizer)
            self._scaler.update()


class ModelEmaV3(nn.Module):
    def __init__(self, model, decay=0.9998):
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        self.decay = decay

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, model, step=None):
        for ema_v, v in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema_v.is_floating_point():
                ema_v.lerp_(v, 1 - self.decay)


def train_one_epoch(epoch, model, loader, optimizer, loss_fn, args, lr_scheduler=None,
                    amp_autocast=suppress, loss_scaler=None, model_ema=None, num_updates_total=None, compression_manager=None):
    second_order = False
    has_no_sync = hasattr(model, "no_sync")
    model.train()
    accum_steps = args.grad_accum_steps
    last_accum_steps = len(loader) % accum_steps
    updates_per_epoch = (len(loader) + accum_steps - 1) // accum_steps
    num_updates = epoch * updates_per_epoch
    last_batch_idx = len(loader) - 1
    last_batch_idx_to_accum = len(loader) - last_accum_steps
    optimizer.zero_grad()
    for batch_idx, (input, target) in enumerate(loader):
        compression_manager.callbacks.on_step_begin(batch_idx)  # neural-coder
        last_batch = batch_idx == last_batch_idx
        need_update = last_batch or (batch_idx + 1) % accum_steps == 0
        if batch_idx >= last_batch_idx_to_accum:
            accum_steps = last_accum_steps

        def _forward():
            with amp_autocast():
                output = model(input)
                loss = loss_fn(output, target)
            if accum_steps > 1:
                loss /= accum_steps
            return loss

        def _backward(_loss, compression_manager):
            if loss_scaler is not None:
                step_hooks = optimizer_step_hooks(optimizer, compression_manager)  # neural-coder
                loss_scaler(_loss, optimizer, clip_grad=args.clip_grad,
                            parameters=model.parameters(), need_update=need_update)
                step_hooks.remove()  # neural-coder
            else:
                _loss.backward(create_graph=second_order)
                if need_update:
                    if args.clip_grad is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
                    compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
                    optimizer.step()
                    compression_manager.callbacks.on_after_optimizer_step()  # neural-coder

        if has_no_sync and not need_update:
            with model.no_sync():
                loss = _forward()
                _backward(loss, compression_manager=compression_manager)
        else:
            loss = _forward()
            _backward(loss, compression_manager=compression_manager)

        if not need_update:
            continue
        num_updates += 1
        optimizer.zero_grad()
        if model_ema is not None:
            model_ema.update(model, step=num_updates)
        if lr_scheduler is not None:
            lr_scheduler.step_update(num_updates=num_updates)
        compression_manager.callbacks.on_step_end()  # neural-coder
    return {"loss": float(loss)}


def validate(model, loader, loss_fn, args, amp_autocast=suppress, log_suffix=""):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for input, target in loader:
            with amp_autocast():
                output = model(input)
            correct += (output.argmax(-1) == target).sum().item()
            total += target.numel()
    return {"top1": 100.0 * correct / total}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--grad-accum-steps", type=int, default=1)
    parser.add_argument("--clip-grad", type=float, default=None)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--model-ema", action="store_true")
    parser.add_argument("--output", default="checkpoint.pt")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(320, 32)
    y = x[:, :5].argmax(1)
    loader_train = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=16, shuffle=True)
    loader_eval = DataLoader(TensorDataset(x[256:], y[256:]), batch_size=32)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_scaler = NativeScaler() if args.amp else None
    model_ema = None
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    if args.model_ema:
        model_ema = ModelEmaV3(model, decay=0.99)
        compression_manager.track_copy(model_ema)  # neural-coder
    train_loss_fn = nn.CrossEntropyLoss()
    best_metric = None
    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train_metrics = train_one_epoch(epoch, model, loader_train, optimizer, train_loss_fn, args,
                                        loss_scaler=loss_scaler, model_ema=model_ema, compression_manager=compression_manager)
        eval_metrics = validate(model, loader_eval, train_loss_fn, args)
        if model_ema is not None:
            eval_metrics = validate(model_ema, loader_eval, train_loss_fn, args, log_suffix=" (EMA)")
        torch.save({"state_dict": model.state_dict(),
                    "state_dict_ema": model_ema.module.state_dict() if model_ema else None}, args.output)
        if best_metric is None or eval_metrics["top1"] > best_metric:
            best_metric = eval_metrics["top1"]
            shutil.copyfile(args.output, "model_best.pt")
        print(epoch, train_metrics, eval_metrics)
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder
    compression_manager.save("neural_coder_output/qat")  # neural-coder


if __name__ == "__main__":
    main()
