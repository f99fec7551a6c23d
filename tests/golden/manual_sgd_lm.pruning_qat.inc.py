"""Language-model example style: module-level globals, batches cut from one long
token stream, a learning rate annealed by hand, and a step that is either an
optimizer's (`--use-optimizer`) or a manual SGD update over the parameters (the
default)."""

import argparse
import math

import torch
import torch.nn as nn
from neural_compressor.config import QuantizationAwareTrainingConfig, WeightPruningConfig
from neural_compressor.training import prepare_compression

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


def train(compression_manager):
    model.train()
    total_loss = 0.0
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        compression_manager.callbacks.on_step_begin(batch)  # neural-coder
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        output = model(data)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        if args.use_optimizer:
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            optimizer.step()
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        else:
            compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        total_loss += loss.item()
        compression_manager.callbacks.on_step_end()  # neural-coder
    return total_loss / (batch + 1)


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
    train_loss = train(compression_manager=compression_manager)
    val_loss = evaluate(val_data)
    print(f"epoch {epoch}: train {train_loss:.3f} valid {val_loss:.3f} ppl {math.exp(val_loss):.2f}")
    if not best_val_loss or val_loss < best_val_loss:
        torch.save(model.state_dict(), args.save)
        best_val_loss = val_loss
    else:
        lr /= 4.0
    compression_manager.callbacks.on_epoch_end()  # neural-coder
compression_manager.callbacks.on_train_end()  # neural-coder
compression_manager.save("neural_coder_output/pruning+qat")  # neural-coder
