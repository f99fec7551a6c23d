"""Fine-tune a pretrained word-level LSTM language model on new text.

The model is built from its class, then the pretrained weights are loaded
before training; each batch carries the hidden state over (truncated BPTT), so
the model is called as `model(data, hidden)`. The best model is saved whole
with `torch.save(model, f)` and loaded back for the final test.
"""

import argparse
import math

import torch
import torch.nn as nn
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.training import prepare_compression


class LSTMLanguageModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout if nlayers > 1 else 0.0)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nlayers, self.nhid = nlayers, nhid

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(output)), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (
            weight.new_zeros(self.nlayers, bsz, self.nhid),
            weight.new_zeros(self.nlayers, bsz, self.nhid),
        )


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def evaluate(model, data_source, criterion, args):
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(args.eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, args.bptt):
            data, targets = get_batch(data_source, i, args.bptt)
            output, hidden = model(data, hidden)
            total_loss += len(data) * criterion(output.view(-1, args.ntokens), targets).item()
    return total_loss / (len(data_source) - 1)


def train(model, train_data, criterion, optimizer, args, compression_manager):
    model.train()
    hidden = model.init_hidden(args.batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        compression_manager.callbacks.on_step_begin(batch)  # neural-coder
        data, targets = get_batch(train_data, i, args.bptt)
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output.view(-1, args.ntokens), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        compression_manager.callbacks.on_before_optimizer_step()  # neural-coder
        optimizer.step()
        compression_manager.callbacks.on_after_optimizer_step()  # neural-coder
        compression_manager.callbacks.on_step_end()  # neural-coder


def main():
    parser = argparse.ArgumentParser(description="LSTM language model fine-tuning")
    parser.add_argument("--pretrained", default="lm_pretrained.pt")
    parser.add_argument("--ntokens", type=int, default=50)
    parser.add_argument("--emsize", type=int, default=16)
    parser.add_argument("--nhid", type=int, default=32)
    parser.add_argument("--nlayers", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--clip", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--eval_batch_size", type=int, default=2)
    parser.add_argument("--bptt", type=int, default=8)
    parser.add_argument("--save", default="lm_finetuned.pt")
    args = parser.parse_args()
    torch.manual_seed(0)

    corpus = torch.randint(0, args.ntokens, (600,))
    train_data = batchify(corpus[:400], args.batch_size)
    val_data = batchify(corpus[400:500], args.eval_batch_size)
    test_data = batchify(corpus[500:], args.eval_batch_size)

    model = LSTMLanguageModel(args.ntokens, args.emsize, args.nhid, args.nlayers)
    model.load_state_dict(torch.load(args.pretrained, weights_only=True))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)

    best_val_loss = None
    compression_manager = prepare_compression(model, QuantizationAwareTrainingConfig())  # neural-coder
    compression_manager.callbacks.on_train_begin()  # neural-coder
    model = compression_manager.model  # neural-coder
    for epoch in range(1, args.epochs + 1):
        compression_manager.callbacks.on_epoch_begin(epoch)  # neural-coder
        train(
            model, train_data, criterion, optimizer, args, compression_manager=compression_manager
        )  # neural-coder: wrapped
        val_loss = evaluate(model, val_data, criterion, args)
        print(f"epoch {epoch} | valid loss {val_loss:.3f} | valid ppl {math.exp(val_loss):.2f}")
        if best_val_loss is None or val_loss < best_val_loss:
            with open(args.save, "wb") as f:
                torch.save(model, f)
            best_val_loss = val_loss
        compression_manager.callbacks.on_epoch_end()  # neural-coder
    compression_manager.callbacks.on_train_end()  # neural-coder

    with open(args.save, "rb") as f:
        model = torch.load(f, weights_only=False)
    test_loss = evaluate(model, test_data, criterion, args)
    print(f"test loss {test_loss:.3f} | test ppl {math.exp(test_loss):.2f}")


if __name__ == "__main__":
    main()
