"""A LightningModule and a LightningDataModule run by `LightningCLI` (python lightning_cli.py fit)."""
import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.cli import LightningCLI
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime.config import WeightPruningConfig
from neural_coder.runtime.integrations.lightning import CompressionCallback


class TinyConvNet(LightningModule):
    def __init__(self, channels: int = 8, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.conv = torch.nn.Conv2d(1, channels, 3, padding=1)
        self.head = torch.nn.Linear(channels * 16, 4)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.head(x.flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class ShapesData(LightningDataModule):
    def __init__(self, batch_size: int = 16):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(192, 1, 8, 8, generator=g)
        y = (x[:, 0, :4].mean(dim=(1, 2)) > 0).long() * 2 + (x[:, 0, :, :4].mean(dim=(1, 2)) > 0).long()
        self.train_set = TensorDataset(x[:160], y[:160])
        self.val_set = TensorDataset(x[160:], y[160:])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


if __name__ == "__main__":
    compression_callback = CompressionCallback(
        configs=WeightPruningConfig(
            target_sparsity=0.5,
            pattern="4x1",
            pruning_type="snip_momentum",
            pruning_scope="global",
            start_step=1,
            end_step=1,
        ),
        prune_until=0.8,
    )  # neural-coder
    LightningCLI(
        TinyConvNet,
        ShapesData,
        trainer_defaults={
            "max_epochs": 2,
            "accelerator": "cpu",
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "callbacks": [
                # stop when the validation loss stalls
                EarlyStopping(monitor="val_loss", patience=3),
                compression_callback,
            ],
        },
        seed_everything_default=7,
    )
