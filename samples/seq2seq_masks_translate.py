"""A tiny nn.Transformer seq2seq: the loop builds the masks and the shifted target from
each batch (a custom collate pads the pairs), greedy decoding after training."""

import argparse

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

PAD, BOS, EOS = 0, 1, 2


class Seq2Seq(nn.Module):
    def __init__(self, vocab, dim=16):
        super().__init__()
        self.src_emb = nn.Embedding(vocab, dim)
        self.tgt_emb = nn.Embedding(vocab, dim)
        self.transformer = nn.Transformer(
            d_model=dim, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32
        )
        self.generator = nn.Linear(dim, vocab)

    def forward(self, src, tgt, tgt_mask, src_padding_mask, tgt_padding_mask):
        out = self.transformer(
            self.src_emb(src),
            self.tgt_emb(tgt),
            tgt_mask=tgt_mask,
            src_key_padding_mask=src_padding_mask,
            tgt_key_padding_mask=tgt_padding_mask,
            memory_key_padding_mask=src_padding_mask,
        )
        return self.generator(out)


def make_masks(src, tgt):
    size = tgt.shape[0]
    tgt_mask = torch.triu(torch.full((size, size), float("-inf")), diagonal=1)
    return tgt_mask, (src == PAD).transpose(0, 1), (tgt == PAD).transpose(0, 1)


def pairs(n, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        src = torch.randint(3, vocab, (int(torch.randint(3, 7, (1,), generator=g)),), generator=g)
        out.append((src, src.flip(0)))
    return out


def collate(batch):
    wrap = lambda s: torch.cat([torch.tensor([BOS]), s, torch.tensor([EOS])])  # noqa: E731
    return (
        pad_sequence([wrap(s) for s, _ in batch], padding_value=PAD),
        pad_sequence([wrap(t) for _, t in batch], padding_value=PAD),
    )


def train_epoch(model, loader, loss_fn, optimizer):
    model.train()
    for src, tgt in loader:
        tgt_input = tgt[:-1, :]
        tgt_mask, src_padding_mask, tgt_padding_mask = make_masks(src, tgt_input)
        logits = model(src, tgt_input, tgt_mask, src_padding_mask, tgt_padding_mask)
        optimizer.zero_grad()
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt[1:, :].reshape(-1))
        loss.backward()
        optimizer.step()


def evaluate(model, loader, loss_fn):
    model.eval()
    losses = 0.0
    with torch.no_grad():
        for src, tgt in loader:
            tgt_input = tgt[:-1, :]
            tgt_mask, src_padding_mask, tgt_padding_mask = make_masks(src, tgt_input)
            logits = model(src, tgt_input, tgt_mask, src_padding_mask, tgt_padding_mask)
            losses += loss_fn(logits.reshape(-1, logits.shape[-1]), tgt[1:, :].reshape(-1)).item()
    return losses / len(loader)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    vocab = 12
    train_loader = DataLoader(pairs(32, vocab, 0), batch_size=8, collate_fn=collate)
    valid_loader = DataLoader(pairs(8, vocab, 1), batch_size=8, collate_fn=collate)
    model = Seq2Seq(vocab)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        train_epoch(model, train_loader, loss_fn, optimizer)
        print(f"epoch {epoch}: val loss {evaluate(model, valid_loader, loss_fn):.3f}")
    torch.save(model.state_dict(), "seq2seq.pt")


if __name__ == "__main__":
    main()
