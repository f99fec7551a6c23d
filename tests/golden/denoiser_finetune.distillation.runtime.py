"""Fine-tune a pretrained noise-prediction network (a diffusion-style denoiser).

The denoiser is loaded trained, then trained to predict the noise added to clean
signals at random timesteps. Like many diffusion models it returns an output object
unless called with `return_dict=False`, and the training step reads the prediction
as the first element of the tuple: `model_pred = denoiser(..., return_dict=False)[0]`.
"""

import argparse
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
import copy
from neural_coder.runtime.config import DistillationConfig, KnowledgeDistillationLossConfig
from neural_coder.runtime.training import ModelInputs, prepare_compression


@dataclass
class DenoiserOutput:
    sample: torch.Tensor


class Denoiser(nn.Module):
    def __init__(self, channels=8, cond_dim=4, steps=50):
        super().__init__()
        self.time_embedding = nn.Embedding(steps, channels)
        self.cond_proj = nn.Linear(cond_dim, channels)
        self.body = nn.Sequential(nn.Linear(channels, 32), nn.SiLU(), nn.Linear(32, channels))

    def forward(self, noisy, timesteps, cond, return_dict=True):
        hidden = noisy + self.time_embedding(timesteps) + self.cond_proj(cond)
        sample = self.body(hidden)
        if not return_dict:
            return (sample,)
        return DenoiserOutput(sample=sample)


def add_noise(clean, noise, timesteps, steps):
    alpha = (1.0 - timesteps.float() / steps).unsqueeze(-1)
    return alpha.sqrt() * clean + (1.0 - alpha).sqrt() * noise


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pretrained", default="denoiser_pretrained.pt")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_train_timesteps", type=int, default=50)
    parser.add_argument("--output", default="denoiser_finetuned.pt")
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(0)
    denoiser = Denoiser(steps=args.num_train_timesteps)
    denoiser.load_state_dict(torch.load(args.pretrained))
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=1e-3)
    dataset = TensorDataset(torch.randn(32, 8), torch.randn(32, 4))
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)

    denoiser.train()
    teacher_model = copy.deepcopy(denoiser)  # neural-coder
    compression_manager = prepare_compression(
        denoiser,
        DistillationConfig(
            teacher_model=teacher_model,
            criterion=KnowledgeDistillationLossConfig(
                temperature=1.0, loss_types=["MSE", "MSE"], loss_weights=[0.5, 0.5]
            ),
        ),
    )  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    for epoch in range(args.epochs):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        for step, (clean, cond) in enumerate(loader):
            compression_manager.callbacks.on_step_begin(step)  # neural-coder
            noise = torch.randn_like(clean)
            timesteps = torch.randint(0, args.num_train_timesteps, (clean.shape[0],))
            noisy = add_noise(clean, noise, timesteps, args.num_train_timesteps)
            outputs = denoiser(noisy, timesteps, cond, return_dict=False)  # neural-coder

            # predict the noise residual
            model_pred = outputs[0]
            loss = F.mse_loss(model_pred.float(), noise.float(), reduction="mean")
            loss = compression_manager.callbacks.on_after_compute_loss(
                ModelInputs(noisy, timesteps, cond, return_dict=False), outputs, loss
            )  # neural-coder

            loss.backward()
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
            optimizer.zero_grad()
            compression_manager.callbacks.on_step_end()  # neural-coder
        print(f"epoch {epoch}: loss {loss.item():.4f}")
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder

    torch.save(denoiser.state_dict(), args.output)


if __name__ == "__main__":
    main()
