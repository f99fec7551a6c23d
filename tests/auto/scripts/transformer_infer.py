"""Classify token sequences with a small Transformer encoder.

An inference script in the style of the PyTorch text-classification tutorials:
the model is built, its weights loaded from a checkpoint next to the script
(written on first use, with the validation set labelled by the checkpoint's own
confident predictions), and `score()` reports accuracy on the validation loader.
"""

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, CLASSES, LENGTH = 200, 4, 12
WEIGHTS = Path("encoder.pt")
VALIDATION = Path("encoder_val.pt")


class TextClassifier(nn.Module):
    def __init__(self, dim=32, heads=2, layers=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.classify = nn.Linear(dim, CLASSES)

    def forward(self, tokens):
        return self.classify(self.encoder(self.embed(tokens)).mean(dim=1))


def write_checkpoint():
    torch.manual_seed(0)
    model = TextClassifier().eval()
    tokens = torch.randint(0, VOCAB, (256, LENGTH))
    with torch.no_grad():
        top2 = model(tokens).topk(2, dim=1)
    keep = (top2.values[:, 0] - top2.values[:, 1]).argsort(descending=True)[:96]
    torch.save(model.state_dict(), WEIGHTS)
    torch.save({"tokens": tokens[keep], "labels": top2.indices[keep, 0]}, VALIDATION)


def score(model, loader):
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for tokens, labels in loader:
            hits += (model(tokens).argmax(-1) == labels).sum().item()
            total += len(labels)
    return hits / total


if __name__ == "__main__":
    if not WEIGHTS.exists() or not VALIDATION.exists():
        write_checkpoint()
    model = TextClassifier()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    validation = torch.load(VALIDATION, weights_only=True)
    loader = DataLoader(TensorDataset(validation["tokens"], validation["labels"]), batch_size=16)
    print("accuracy:", score(model, loader))
