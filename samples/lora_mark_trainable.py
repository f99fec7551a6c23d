"""LoRA fine-tuning in the style of litgpt / loralib: the linear layers carry low-rank
adapters, `mark_only_lora_as_trainable(model)` freezes every other weight, and a
Fabric-like loop in fit() trains the adapters. Pruning is refused (the weights it would
prune get no gradient), and so is QAT (it would quantize the frozen weights without
training them, under fp32 adapters that could no longer be merged into them); a freeze
of one part (`model.head.requires_grad_(False)`) leaves the rest to compress."""

import math
import os

import torch
from torch import nn


class LoRALinear(nn.Linear):
    def __init__(self, in_features, out_features, r=4, alpha=8):
        super().__init__(in_features, out_features)
        self.lora_A = nn.Parameter(torch.randn(r, in_features) / math.sqrt(in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, r))
        self.scaling = alpha / r

    def forward(self, x):
        return super().forward(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling


class TinyLM(nn.Module):
    def __init__(self, vocab=64, dim=32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = LoRALinear(dim, dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids):
        return self.head(torch.relu(self.proj(self.embed(ids))))


def mark_only_lora_as_trainable(model):
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name


def fit(model, optimizer, batches, max_steps):
    step_count = 0
    while step_count < max_steps:
        ids = next(batches)
        logits = model(ids[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        step_count += 1
    print(f"final loss {loss.item():.4f}")


def batch_stream():
    while True:
        yield torch.randint(0, 64, (8, 12))


def main():
    torch.manual_seed(0)
    model = TinyLM()
    mark_only_lora_as_trainable(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    fit(model, optimizer, batch_stream(), max_steps=int(os.environ.get("STEPS", "20")))
    torch.save(model.state_dict(), "lora_finetuned.pt")


if __name__ == "__main__":
    main()
