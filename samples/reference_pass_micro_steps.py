"""A single-file language-model trainer laid out the way C-port reference scripts are:
everything under `if __name__ == "__main__":`, one forward/backward pass before
training that dumps reference gradients for another implementation to compare with,
then an iteration loop with gradient-accumulation micro-steps run under a precision
context chosen from the device (`with ctx:`), and the weights saved at the end.
"""

import argparse
from contextlib import nullcontext

import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyLM(nn.Module):
    def __init__(self, vocab=32, width=32, context=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width * context, width * 2)
        self.head = nn.Linear(width * 2, vocab)

    def forward(self, idx, targets=None):
        hidden = F.gelu(self.mix(self.embed(idx).flatten(1)))
        logits = self.head(hidden)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


def next_batch(data, batch, context, generator):
    starts = torch.randint(0, len(data) - context - 1, (batch,), generator=generator)
    x = torch.stack([data[s : s + context] for s in starts])
    return x, data[starts + context]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_iterations", type=int, default=40)
    parser.add_argument("--grad_accum_steps", type=int, default=2)
    parser.add_argument("--write_reference", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = args.device
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else nullcontext()
    g = torch.Generator().manual_seed(0)
    data = (torch.arange(4000) * 7 % 31 + torch.randint(0, 2, (4000,), generator=g)) % 32
    model = TinyLM()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)

    if args.write_reference:
        x, y = next_batch(data, 4, 8, g)
        logits, loss = model(x, y)
        loss.backward()
        reference = {name: p.grad.clone() for name, p in model.named_parameters()}
        torch.save(reference, "reference_grads.pt")
        optimizer.zero_grad(set_to_none=True)

    for step in range(args.num_iterations):
        running = 0.0
        for micro_step in range(args.grad_accum_steps):
            x, y = next_batch(data, 16, 8, g)
            with ctx:
                _, loss = model(x, y)
            loss = loss / args.grad_accum_steps
            running += loss.item()
            loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 10 == 0:
            print(f"step {step}: loss {running:.4f} norm {norm:.3f}")

    model.eval()
    with torch.no_grad():
        x, y = next_batch(data, 64, 8, g)
        _, val = model(x, y)
    print(f"final loss {val.item():.4f}")
    torch.save(model.state_dict(), "tiny_lm.pt")
