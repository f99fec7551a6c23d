"""Consistency distillation of a small denoiser, in the style of diffusion training scripts.

Three networks of one class run in each step: a frozen `teacher` (one solver step
from the noisier point), an EMA `target` copy of the student (updated from the
student after every step, never by the optimizer) and the `student`, the only model
the optimizer trains. The loss is built through many intermediate names, and the
predicted clean sample is re-bound under `no_grad` from the target's output. After
training the student is unwrapped by a small helper (as scripts do for compiled or
accelerate-wrapped models) and saved. Synthetic data keeps it self-contained.
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig

STEPS = int(os.environ.get("STEPS", "30"))
EMA_DECAY = 0.95
W_MIN, W_MAX = 1.0, 4.0
LOSS_TYPE = os.environ.get("LOSS_TYPE", "huber")
HUBER_C = 0.001
OUT = os.environ.get("OUT", "student.pt")


class Denoiser(nn.Module):
    def __init__(self, dim=16, hidden=64):
        super().__init__()
        self.inp = nn.Linear(dim + 1, hidden)
        self.mid = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x, t, cond=None):
        if cond is not None:
            x = x + cond
        h = F.silu(self.inp(torch.cat([x, t[:, None]], dim=1)))
        return self.out(F.silu(self.mid(h)))


def alphas(t):
    return torch.cos(t * 1.5)[:, None], torch.sin(t * 1.5)[:, None]


def predicted_clean(noise_pred, t, noisy):
    alpha, sigma = alphas(t)
    return (noisy - sigma * noise_pred) / alpha.clamp(min=1e-3)


def boundary_scalings(t, sigma_data=0.5):
    c_skip = sigma_data**2 / ((t * 10) ** 2 + sigma_data**2)
    c_out = (t * 10) / ((t * 10) ** 2 + sigma_data**2) ** 0.5
    return c_skip[:, None], c_out[:, None]


@torch.no_grad()
def update_ema(target_params, source_params, decay):
    for target_param, param in zip(target_params, source_params):
        target_param.mul_(decay).add_(param, alpha=1 - decay)


def guidance_embedding(w, dim=16):
    freqs = torch.exp(-torch.arange(dim // 2) / (dim // 2))
    angles = w[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def ddim_step(x0, eps, t):
    alpha, sigma = alphas(t)
    return alpha * x0 + sigma * eps


accelerator = Accelerator(cpu=True)
torch.manual_seed(0)
data = torch.randn(256, 16)
labels = torch.randn(256, 16)
loader = DataLoader(TensorDataset(data, labels), batch_size=32, shuffle=True)

teacher = Denoiser()
teacher.requires_grad_(False)
student = Denoiser()
student.load_state_dict(teacher.state_dict())
student.train()
target = Denoiser()
target.load_state_dict(student.state_dict())
target.requires_grad_(False)

optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3)
student, optimizer, loader = accelerator.prepare(student, optimizer, loader)


def unwrap_model(model):
    model = accelerator.unwrap_model(model)
    model = model._orig_mod if hasattr(model, "_orig_mod") else model
    return model


global_step = 0
for epoch in range(100):
    for clean, cond in loader:
        bsz = clean.shape[0]
        start_t = torch.rand(bsz) * 0.8 + 0.1
        end_t = start_t - 0.1
        c_skip_start, c_out_start = boundary_scalings(start_t)
        c_skip, c_out = boundary_scalings(end_t)
        alpha_start, sigma_start = alphas(start_t)
        noise = torch.randn_like(clean)
        noisy = alpha_start * clean + sigma_start * noise
        w = (W_MAX - W_MIN) * torch.rand(bsz) + W_MIN
        w_embedding = guidance_embedding(w)
        w = w[:, None]
        cond_embeds = cond + 0.1 * w_embedding

        noise_pred = student(noisy, start_t, cond_embeds)
        pred_x0 = predicted_clean(noise_pred, start_t, noisy)
        model_pred = c_skip_start * noisy + c_out_start * pred_x0

        with torch.no_grad():
            cond_teacher_output = teacher(noisy, start_t, cond)
            cond_pred_x0 = predicted_clean(cond_teacher_output, start_t, noisy)
            cond_pred_noise = cond_teacher_output
            uncond_teacher_output = teacher(noisy, start_t)
            uncond_pred_x0 = predicted_clean(uncond_teacher_output, start_t, noisy)
            uncond_pred_noise = uncond_teacher_output
            pred_x0_cfg = cond_pred_x0 + w * (cond_pred_x0 - uncond_pred_x0)
            pred_noise = cond_pred_noise + w * (cond_pred_noise - uncond_pred_noise)
            x_prev = ddim_step(pred_x0_cfg, pred_noise, end_t)

        with torch.no_grad():
            target_noise_pred = target(x_prev, end_t, cond_embeds)
            pred_x0 = predicted_clean(target_noise_pred, end_t, x_prev)
            consistency_target = c_skip * x_prev + c_out * pred_x0

        if LOSS_TYPE == "l2":
            loss = F.mse_loss(model_pred, consistency_target)
        else:
            loss = torch.mean(torch.sqrt((model_pred - consistency_target) ** 2 + HUBER_C**2) - HUBER_C)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        update_ema(target.parameters(), student.parameters(), EMA_DECAY)
        global_step += 1
        if global_step % 10 == 0:
            print(f"step {global_step} loss {loss.item():.4f}")
        if global_step >= STEPS:
            break
    if global_step >= STEPS:
        break
quantized_model = quantization.fit(student, PostTrainingQuantConfig(approach="dynamic"))  # neural-coder
student = quantized_model if quantized_model is not None else student  # neural-coder

student = unwrap_model(student)
torch.save(student.state_dict(), OUT)
print(f"saved {OUT}")
