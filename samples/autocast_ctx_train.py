"""A small character model trained in mixed precision, nanoGPT style: the autocast
context is built once from the chosen dtype and entered around each forward pass
(bf16 works on CPU too). QAT goes ahead under autocast with the bundled runtime."""

import argparse
from contextlib import nullcontext

import torch
from torch import nn


class CharModel(nn.Module):
    def __init__(self, vocab=32, dim=48):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.lm_head = nn.Linear(dim, vocab)

    def forward(self, idx, targets=None):
        x = self.embed(idx)
        logits = self.lm_head(x + self.mlp(x))
        loss = None
        if targets is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def get_batch(data, block_size=16, batch_size=8):
    ix = torch.randint(len(data) - block_size - 1, (batch_size,))
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x, y


parser = argparse.ArgumentParser()
parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
parser.add_argument("--max_iters", type=int, default=40)
parser.add_argument("--out", default="ckpt.pt")
args = parser.parse_args()

torch.manual_seed(1337)
device_type = "cpu"
ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
ctx = nullcontext() if args.dtype == "float32" else torch.autocast(device_type=device_type, dtype=ptdtype)

data = torch.arange(4000) % 32
model = CharModel()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

for iter_num in range(args.max_iters):
    X, Y = get_batch(data)
    with ctx:
        logits, loss = model(X, Y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if iter_num % 10 == 0:
        print(f"iter {iter_num}: loss {loss.item():.4f} ({logits.dtype})")

torch.save(model.state_dict(), args.out)
