"""A recurrent next-token model trained with a hand-written SGD update and no optimizer
object at all; the learning rate is annealed when validation stops improving, and the
best model, saved whole, is loaded back for the final test."""

import argparse
import math

import torch
import torch.nn as nn
from neural_coder.runtime.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_coder.runtime.training import prepare_compression

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=2.0)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--bptt", type=int, default=8)
parser.add_argument("--clip", type=float, default=0.25)
parser.add_argument("--save", default="manual_update_lm.pt")
args = parser.parse_args()

torch.manual_seed(0)
VOCAB = 16


class TinyRecurrentLM(nn.Module):
    def __init__(self, vocab: int, width: int = 24) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.cell = nn.GRU(width, width)
        self.proj = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens, hidden):
        output, hidden = self.cell(self.embed(tokens), hidden)
        return self.head(torch.tanh(self.proj(output))).view(-1, VOCAB), hidden

    def init_hidden(self, batch: int):
        return torch.zeros(1, batch, self.cell.hidden_size)


def stream(length: int, batch: int) -> torch.Tensor:
    tokens = torch.zeros(length * batch, dtype=torch.long)
    for i in range(1, len(tokens)):
        tokens[i] = (tokens[i - 1] * 3 + 1) % VOCAB
    return tokens.view(batch, -1).t().contiguous()


def get_batch(source, i):
    seq_len = min(args.bptt, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


train_data, val_data, test_data = stream(96, 4), stream(40, 4), stream(40, 4)
model = TinyRecurrentLM(VOCAB)
criterion = nn.CrossEntropyLoss()


def evaluate(source):
    model.eval()
    total, hidden = 0.0, model.init_hidden(source.size(1))
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, args.bptt):
            data, targets = get_batch(source, i)
            output, hidden = model(data, hidden)
            total += len(data) * criterion(output, targets).item()
    return total / (len(source) - 1)


def train(compression_manager):
    model.train()
    hidden = model.init_hidden(train_data.size(1))
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        compression_manager.callbacks.on_step_begin(batch)  # neural-coder
        data, targets = get_batch(train_data, i)
        hidden = hidden.detach()
        model.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        compression_manager.callbacks.on_step_end()  # neural-coder


lr = args.lr
best_val_loss = None
compression_manager = prepare_compression(
    model,
    [
        WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=max(
                1,
                min(
                    int(
                        0.8
                        * (
                            len(range(1, args.epochs + 1))
                            * len(range(0, train_data.size(0) - 1, args.bptt))
                        )
                    ),
                    (
                        len(range(1, args.epochs + 1))
                        * len(range(0, train_data.size(0) - 1, args.bptt))
                    )
                    // max(1, len(range(1, args.epochs + 1)))
                    - 1,
                ),
            ),
        ),
        QuantizationAwareTrainingConfig(),
    ],
)  # neural-coder
compression_manager.callbacks.on_train_begin()  # neural-coder
model = compression_manager.model  # neural-coder
for epoch in range(1, args.epochs + 1):
    compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
    train(compression_manager=compression_manager)
    val_loss = evaluate(val_data)
    print(f"epoch {epoch}: valid loss {val_loss:.3f}, ppl {math.exp(val_loss):.2f}")
    if best_val_loss is None or val_loss < best_val_loss:
        with open(args.save, "wb") as f:
            torch.save(model, f)
        best_val_loss = val_loss
    else:
        lr /= 4.0
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder

with open(args.save, "rb") as f:
    model = torch.load(f, weights_only=False)
print(f"test loss {evaluate(test_data):.3f}")
