"""Language-model example style: module-level globals, batches cut from one long
token stream, a learning rate annealed by hand, and a step that is either an
optimizer's (`--use-optimizer`) or a manual SGD update over the parameters (the
default)."""

import argparse
import math

import torch
import torch.nn as nn

parser = argparse.ArgumentParser(description="tiny next-token model")
parser.add_argument("--lr", type=float, default=0.5)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--bptt", type=int, default=8)
parser.add_argument("--clip", type=float, default=0.25)
parser.add_argument("--use-optimizer", action="store_true", help="step with torch.optim.SGD")
parser.add_argument("--save", type=str, default="model.pt")
args = parser.parse_args()

torch.manual_seed(0)
VOCAB = 12


class NextToken(nn.Module):
    def __init__(self, vocab: int, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.hidden = nn.Linear(width, 64)
        self.decoder = nn.Linear(64, vocab)

    def forward(self, tokens):
        return self.decoder(torch.tanh(self.hidden(self.embed(tokens))))


def synthetic_stream(length):
    stream = torch.zeros(length, dtype=torch.long)
    for i in range(1, length):
        stream[i] = (stream[i - 1] * 5 + 3) % VOCAB  # a fixed successor per token
    return stream


def get_batch(source, i):
    seq_len = min(args.bptt, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len]


train_data = synthetic_stream(240)
val_data = synthetic_stream(120)
model = NextToken(VOCAB)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
lr = args.lr


def evaluate(data_source):
    model.eval()
    total_loss = 0.0
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, args.bptt):
            data, targets = get_batch(data_source, i)
            total_loss += len(data) * criterion(model(data), targets).item()
    return total_loss / (len(data_source) - 1)


def train():
    model.train()
    total_loss = 0.0
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        output = model(data)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        if args.use_optimizer:
            optimizer.step()
        else:
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
    return total_loss / (batch + 1)


best_val_loss = None
for epoch in range(1, args.epochs + 1):
    train_loss = train()
    val_loss = evaluate(val_data)
    print(f"epoch {epoch}: train {train_loss:.3f} valid {val_loss:.3f} ppl {math.exp(val_loss):.2f}")
    if not best_val_loss or val_loss < best_val_loss:
        torch.save(model.state_dict(), args.save)
        best_val_loss = val_loss
    else:
        lr /= 4.0
