"""A fine-tuning script in the style of diffusers' training examples: the moving average
of the weights is a list of "shadow" tensors made from `model.parameters()` (as
diffusers' `EMAModel` and torch_ema keep it), stepped after every optimizer step,
swapped in for validation and copied into the model before it is saved.

Synthetic data (a tiny denoising MLP) keeps it self-contained.
"""

import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class EMAModel:
    def __init__(self, parameters, decay=0.999, min_decay=0.0):
        self.shadow_params = [p.clone().detach() for p in parameters]
        self.decay, self.min_decay = decay, min_decay
        self.optimization_step = 0
        self.temp_stored_params = None

    @torch.no_grad()
    def step(self, parameters):
        self.optimization_step += 1
        decay = max(self.min_decay, min(self.decay, (1 + self.optimization_step) / (10 + self.optimization_step)))
        for s_param, param in zip(self.shadow_params, parameters):
            s_param.sub_((1 - decay) * (s_param - param))

    def to(self, device=None, dtype=None):
        self.shadow_params = [p.to(device=device, dtype=dtype) for p in self.shadow_params]

    def copy_to(self, parameters):
        for s_param, param in zip(self.shadow_params, parameters):
            param.data.copy_(s_param.to(param.device).data)

    def store(self, parameters):
        self.temp_stored_params = [param.detach().cpu().clone() for param in parameters]

    def restore(self, parameters):
        for c_param, param in zip(self.temp_stored_params, parameters):
            param.data.copy_(c_param.data)
        self.temp_stored_params = None


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_train_epochs", type=int, default=3)
    parser.add_argument("--use_ema", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ema_decay", type=float, default=0.999)
    parser.add_argument("--output_path", default="denoiser.pt")
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(0)
    clean = torch.randn(256, 24)
    noisy = clean + 0.3 * torch.randn_like(clean)
    train_dataloader = DataLoader(TensorDataset(noisy[:224], clean[:224]), batch_size=16, shuffle=True)
    val_pairs = (noisy[224:], clean[224:])

    model = nn.Sequential(nn.Linear(24, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 24))
    if args.use_ema:
        ema_model = EMAModel(model.parameters(), decay=args.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if args.use_ema:
        ema_model.to(dtype=torch.float32)

    global_step = 0
    for epoch in range(args.num_train_epochs):
        model.train()
        for step, (x, target) in enumerate(train_dataloader):
            loss = nn.functional.mse_loss(model(x), target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if args.use_ema:
                ema_model.step(model.parameters())
            global_step += 1

        if args.use_ema:
            ema_model.store(model.parameters())
            ema_model.copy_to(model.parameters())
        with torch.no_grad():
            val_loss = nn.functional.mse_loss(model(val_pairs[0]), val_pairs[1]).item()
        print(f"epoch {epoch}: validation loss {val_loss:.4f}")
        if args.use_ema:
            ema_model.restore(model.parameters())

    if args.use_ema:
        ema_model.copy_to(model.parameters())
    torch.save(model.state_dict(), args.output_path)


if __name__ == "__main__":
    main()
