"""A character-level model trained the way minimal GPT scripts train one: the text is one
1-D tensor of token ids split 90/10, batches come from `get_batch(split)` (no
DataLoader), a `while True` loop stops past `max_iters`, and `estimate_loss()` averages
the loss of a few batches of each split."""

import torch
import torch.nn as nn
from torch.nn import functional as F
from neural_coder.runtime import mix_precision
from neural_coder.runtime.config import AccuracyCriterion, MixedPrecisionConfig, TuningCriterion

max_iters = 6
eval_interval = 3
eval_iters = 2
batch_size = 8
block_size = 16
learning_rate = 3e-3

text = "the quick brown fox jumps over the lazy dog. " * 40
chars = sorted(set(text))
vocab_size = len(chars)
stoi = {ch: i for i, ch in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data))
train_data = data[:n]
val_data = data[n:]
torch.manual_seed(0)


def get_batch(split):
    source = train_data if split == "train" else val_data
    ix = torch.randint(len(source) - block_size, (batch_size,))
    x = torch.stack([source[i : i + block_size] for i in ix])
    y = torch.stack([source[i + 1 : i + block_size + 1] for i in ix])
    return x, y


class CharModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, 32)
        self.proj = nn.Linear(32, 64)
        self.lm_head = nn.Linear(64, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.lm_head(F.gelu(self.proj(self.token_embedding(idx))))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


model = CharModel()
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)


@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in ["train", "val"]:
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch(split)
            logits, loss = model(X, Y)
            losses[k] = loss.item()
        out[split] = losses.mean()
    model.train()
    return out


iter_num = 0
X, Y = get_batch("train")
while True:
    if iter_num % eval_interval == 0:
        losses = estimate_loss()
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    logits, loss = model(X, Y)
    X, Y = get_batch("train")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    iter_num += 1
    if iter_num > max_iters:
        break
def evaluate_candidate(candidate):  # neural-coder
    global model  # neural-coder
    trained_model, model = model, candidate  # neural-coder
    try:  # neural-coder
        return estimate_loss()["val"]  # neural-coder
    finally:
        model = trained_model
quantized_model = mix_precision.fit(
    model,
    MixedPrecisionConfig(
        accuracy_criterion=AccuracyCriterion(
            criterion="relative", tolerable_loss=0.01, higher_is_better=False
        ),
        tuning_criterion=TuningCriterion(max_trials=100),
    ),
    eval_func=evaluate_candidate,
)  # neural-coder
model = quantized_model if quantized_model is not None else model  # neural-coder
if quantized_model is not None:  # neural-coder
    quantized_model.save("neural_coder_output/bf16")  # neural-coder
