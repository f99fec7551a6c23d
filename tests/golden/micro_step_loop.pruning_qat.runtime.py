"""Single-file GPT-trainer style: module-level settings, an iteration budget instead
of epochs (`while True` ... `if iter_num > max_iters: break`), gradient accumulation
as an inner loop over micro-steps, and optional torch.compile / DDP wraps."""

import os

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.integrations.hooks import fit_pruning_schedules
from neural_coder.runtime.training import prepare_compression

batch_size = 8
block_size = 6
vocab_size = 16
gradient_accumulation_steps = 2
max_iters = 30
learning_rate = 3e-3
eval_interval = 10
compile = False  # torch.compile the model
ddp = int(os.environ.get("RANK", -1)) != -1

torch.manual_seed(1337)
data = torch.tensor([(i * 7 + 3) % vocab_size for i in range(2000)])


def get_batch():
    ix = torch.randint(len(data) - block_size - 1, (batch_size,))
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x, y


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, 32)
        self.mlp = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
        self.lm_head = nn.Linear(32, vocab_size)

    def forward(self, idx, targets=None):
        x = self.wte(idx)
        logits = self.lm_head(x + self.mlp(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


model = TinyLM()
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
compression_manager = prepare_compression(
    model,
    [
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=1,
        ),
        QuantizationAwareTrainingConfig(),
    ],
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder
model = compression_manager.model  # neural-coder
if compile:
    unoptimized_model = model
    model = torch.compile(model)
if ddp:
    model = DDP(model)
raw_model = model.module if ddp else model

iter_num = 0
X, Y = get_batch()
fit_pruning_schedules(compression_manager.callbacks, max(1, int(0.8 * (max_iters))))  # neural-coder
while True:
    compression_manager.callbacks.on_step_begin(0)  # neural-coder
    if iter_num % eval_interval == 0:
        with torch.no_grad():
            _, val_loss = model(*get_batch())
        print(f"step {iter_num}: val loss {val_loss.item():.4f}")
    for micro_step in range(gradient_accumulation_steps):
        logits, loss = model(X, Y)
        loss = loss / gradient_accumulation_steps
        X, Y = get_batch()
        loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
    optimizer.step()
    compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1
    if iter_num > max_iters:
        break
    compression_manager.callbacks.on_step_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder

torch.save(raw_model.state_dict(), "ckpt.pt")
