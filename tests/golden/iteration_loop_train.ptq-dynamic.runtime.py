"""A tiny character model trained for a fixed number of iterations at module level,
the way small GPT training scripts are written: config globals, an optional DDP setup,
a `while True` loop that evaluates and checkpoints every few iterations."""

import os
import time

import torch
import torch.nn as nn
from torch.distributed import init_process_group
from torch.nn.parallel import DistributedDataParallel as DDP
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

out_dir = "out-tiny"
eval_interval = 4
max_iters = 8
batch_size = 4
block_size = 8
vocab_size = 16
learning_rate = 1e-2

ddp = int(os.environ.get("RANK", -1)) != -1
if ddp:
    init_process_group(backend="gloo")
    ddp_rank = int(os.environ["RANK"])
    master_process = ddp_rank == 0
else:
    master_process = True
if master_process:
    os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(1337)
data = torch.randint(0, vocab_size, (512,))


def get_batch():
    ix = torch.randint(len(data) - block_size - 1, (batch_size,))
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x, y


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 32)
        self.hidden = nn.Linear(32, 32)
        self.head = nn.Linear(32, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.head(torch.relu(self.hidden(self.embed(idx))))
        loss = None
        if targets is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, vocab_size), targets.view(-1))
        return logits, loss


model = TinyLM()
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
if ddp:
    model = DDP(model)
raw_model = model.module if ddp else model


@torch.no_grad()
def estimate_loss():
    model.eval()
    losses = torch.zeros(2)
    for k in range(2):
        X, Y = get_batch()
        _, loss = model(X, Y)
        losses[k] = loss.item()
    model.train()
    return losses.mean()


X, Y = get_batch()
iter_num = 0
best_val_loss = 1e9
t0 = time.time()
while True:
    if iter_num % eval_interval == 0 and master_process:
        val_loss = estimate_loss()
        print(f"step {iter_num}: val loss {val_loss:.4f}")
        if val_loss < best_val_loss:
            best_val_loss = val_loss
            checkpoint = {"model": raw_model.state_dict(), "iter_num": iter_num}
            torch.save(checkpoint, os.path.join(out_dir, "ckpt.pt"))
    logits, loss = model(X, Y)
    X, Y = get_batch()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1
    if iter_num > max_iters:
        break
def evaluate_candidate(candidate):  # neural-coder
    global model  # neural-coder
    trained_model, model = model, candidate  # neural-coder
    try:  # neural-coder
        return estimate_loss()  # neural-coder
    finally:
        model = trained_model
quantized_model = quantization.fit(
    model,
    PostTrainingQuantConfig(
        approach="dynamic",
        accuracy_criterion=AccuracyCriterion(
            criterion="relative", tolerable_loss=0.01, higher_is_better=False
        ),
        tuning_criterion=TuningCriterion(max_trials=100),
    ),
    eval_func=evaluate_candidate,
)  # neural-coder
model = quantized_model if quantized_model is not None else model  # neural-coder
if quantized_model is not None and master_process:  # neural-coder
    quantized_model.save(os.path.join(out_dir, "neural_coder_ptq-dynamic"))  # neural-coder
