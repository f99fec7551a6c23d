"""A small conv backbone inside a LightningModule, fed by a LightningDataModule of synthetic
8x8 "images": fitted, tested and saved."""
from argparse import ArgumentParser

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset, random_split
from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion
from neural_coder.runtime.integrations.lightning_quantization import lightning_calib_dataloader, lightning_eval_func, quantized_lightning_module


class TinyConvNet(nn.Module):
    def __init__(self, channels=8, classes=4):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.head = nn.Linear(channels * 4 * 4, classes)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.head(x.flatten(1))


class ImageClassifier(pl.LightningModule):
    def __init__(self, backbone=None, learning_rate=1e-2):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone if backbone is not None else TinyConvNet()

    def forward(self, x):
        return self.backbone(x)

    def _shared_step(self, batch, stage):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log(f"{stage}_loss", loss)
        self.log(f"{stage}_acc", (logits.argmax(-1) == y).float().mean())
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)


class SyntheticImages(pl.LightningDataModule):
    def __init__(self, batch_size=32, size=1536):
        super().__init__()
        self.batch_size = batch_size
        self.size = size

    def setup(self, stage=None):
        g = torch.Generator().manual_seed(0)
        templates = torch.randn(4, 1, 8, 8, generator=g)  # one pattern per class, plus noise
        y = torch.randint(0, 4, (self.size,), generator=g)
        x = templates[y] + 0.8 * torch.randn(self.size, 1, 8, 8, generator=g)
        data = TensorDataset(x, y)
        self.train_set, self.val_set, self.test_set = random_split(
            data, [self.size - 512, 256, 256], generator=torch.Generator().manual_seed(1)
        )

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.batch_size)


def main():
    parser = ArgumentParser()
    parser.add_argument("--max_epochs", type=int, default=2)
    parser.add_argument("--learning_rate", type=float, default=1e-2)
    parser.add_argument("--output", default=None, help="save the tested module's weights here")
    args = parser.parse_args()
    pl.seed_everything(3)

    datamodule = SyntheticImages()
    classifier = ImageClassifier(TinyConvNet(), learning_rate=args.learning_rate)
    trainer = pl.Trainer(
        max_epochs=args.max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(classifier, datamodule=datamodule)
    quantized_model = quantization.fit(
        classifier,
        PostTrainingQuantConfig(
            approach="static",
            calibration_sampling_size=[100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=0.01),
            tuning_criterion=TuningCriterion(max_trials=100),
        ),
        calib_dataloader=lightning_calib_dataloader(trainer),
        eval_func=lightning_eval_func(trainer, "test", datamodule=datamodule),
    )  # neural-coder
    classifier = quantized_lightning_module(quantized_model, classifier)  # neural-coder
    results = trainer.test(classifier, datamodule=datamodule, verbose=False)
    print("test results:", results)
    if args.output:
        torch.save(classifier.state_dict(), args.output)


if __name__ == "__main__":
    main()
