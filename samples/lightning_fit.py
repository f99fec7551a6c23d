"""Classify synthetic digits with a LightningModule trained by `Trainer.fit`, then test it."""
from argparse import ArgumentParser

import lightning.pytorch as pl
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class Encoder(torch.nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, hidden)
        self.fc2 = torch.nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class DigitClassifier(pl.LightningModule):
    def __init__(self, encoder, lr=0.05):
        super().__init__()
        self.encoder = encoder
        self.lr = lr

    def forward(self, x):
        return self.encoder(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.encoder(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean())

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self(x).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def synthetic_digits(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, 8, generator=g)
    y = (x[:, :2].sum(dim=(1, 2)) > 0).long() + 2 * (x[:, 2:4].sum(dim=(1, 2)) > 0).long()
    return TensorDataset(x, y)


def main():
    parser = ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--save", default=None, help="write the tested module's state_dict here")
    args = parser.parse_args()
    pl.seed_everything(7)

    train_loader = DataLoader(synthetic_digits(256, 0), batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(synthetic_digits(64, 1), batch_size=args.batch_size)
    test_loader = DataLoader(synthetic_digits(64, 2), batch_size=args.batch_size)

    model = DigitClassifier(Encoder())
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train_loader, val_loader)
    print(trainer.test(model, dataloaders=test_loader, verbose=False))
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
