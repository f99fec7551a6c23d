"""A small GPT-style language model trained the way single-file GPT scripts train one:
batches from `get_batch(split)` (no DataLoader), the targets passed by keyword
(`model(X, targets=Y)`), a forward that scores only the last position when no targets
are given (generation), and reports written only on the main process
(`not dist.is_initialized() or dist.get_rank() == 0`). Random token ids."""

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn import functional as F

vocab_size = 24
block_size = 12
batch_size = 6
max_iters = 8
eval_interval = 4
torch.manual_seed(0)
tokens = torch.randint(0, vocab_size, (2000,))
train_tokens, val_tokens = tokens[:1800], tokens[1800:]


def get_batch(split):
    data = train_tokens if split == "train" else val_tokens
    starts = torch.randint(len(data) - block_size - 1, (batch_size,))
    x = torch.stack([data[s : s + block_size] for s in starts])
    y = torch.stack([data[s + 1 : s + block_size + 1] for s in starts])
    return x, y


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, 32)
        self.mlp = nn.Linear(32, 32)
        self.lm_head = nn.Linear(32, vocab_size)

    def forward(self, idx, targets=None):
        x = F.gelu(self.mlp(self.wte(idx)))
        if targets is None:
            # generation: only the last position is scored
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        return logits, F.cross_entropy(logits.view(-1, vocab_size), targets.view(-1))


model = TinyGPT()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

iter_num = 0
while True:
    X, Y = get_batch("train")
    logits, loss = model(X, targets=Y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if iter_num % eval_interval == 0:
        with torch.no_grad():
            Xv, Yv = get_batch("val")
            _, val_loss = model(Xv, targets=Yv)
        if not dist.is_initialized() or dist.get_rank() == 0:
            print(f"iter {iter_num}: train {loss.item():.3f} val {val_loss.item():.3f}")
    iter_num += 1
    if iter_num >= max_iters:
        break
