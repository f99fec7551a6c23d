"""The Lightning `CompressionCallback`: the manager's hooks driven by `Trainer.fit`."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

pl = pytest.importorskip("lightning.pytorch")

from neural_coder.runtime.config import (  # noqa: E402
    DistillationConfig,
    KnowledgeDistillationLossConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.integrations.hooks import TrainerCompressionError  # noqa: E402
from neural_coder.runtime.integrations.lightning import CompressionCallback  # noqa: E402
from neural_coder.runtime.training import prepare_compression  # noqa: E402


class Lit(pl.LightningModule):
    def __init__(self, optimizers: int = 1) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)
        )
        self.optimizers_wanted = optimizers
        self.automatic_optimization = optimizers == 1

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        if not self.automatic_optimization:
            for opt in self.optimizers():
                opt.zero_grad()
            self.manual_backward(loss)
            for opt in self.optimizers():
                opt.step()
            return None
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        if self.optimizers_wanted == 1:
            return torch.optim.SGD(self.parameters(), lr=0.1)
        return [torch.optim.SGD(self.parameters(), lr=0.1) for _ in range(self.optimizers_wanted)]


def _loader(batches: int = 6) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(8 * batches, 16, generator=g), torch.randint(0, 4, (8 * batches,), generator=g)
    )
    return torch.utils.data.DataLoader(data, batch_size=8)


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **{"max_epochs": 2, **kwargs},
    )


def _pruning(end_step: int = 0) -> WeightPruningConfig:
    return WeightPruningConfig(target_sparsity=0.5, pattern="4x1", start_step=0, end_step=end_step)


def test_pruning_follows_optimizer_steps_with_gradient_accumulation():
    model = Lit()
    cm = prepare_compression(model, _pruning())
    trainer = _trainer(accumulate_grad_batches=2)
    trainer.callbacks.append(CompressionCallback(cm, prune_until=0.8))
    trainer.fit(model, _loader())
    # 6 batches x 2 epochs, two batches per optimizer step: 6 steps, pruning ends at step 4
    assert cm.summary["pruning_steps_seen"] == 6
    assert cm.summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert float((model.net[0].weight == 0).float().mean()) == pytest.approx(0.5, abs=0.02)


def test_qat_trains_the_module_lightning_holds_and_ends_int8():
    model = Lit()
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    trainer = _trainer()
    trainer.callbacks.append(CompressionCallback(cm))
    trainer.fit(model, _loader())
    assert cm.summary["quantized_modules"] == 2
    assert hasattr(model.net[0], "weight_fake_quant")  # Lightning's module: fake-quant, frozen
    first = trainer.validate(model, _loader(2), verbose=False)[0]["val_loss"]
    again = trainer.validate(model, _loader(2), verbose=False)[0]["val_loss"]
    assert first == pytest.approx(again)  # observers frozen: evaluation does not move them


def test_configs_prepare_the_manager_on_the_fitted_module_and_distil():
    model = Lit()
    teacher = copy.deepcopy(model)
    callback = CompressionCallback(
        configs=[
            _pruning(),
            DistillationConfig(teacher, KnowledgeDistillationLossConfig()),
        ],
        prune_until=0.5,
    )
    trainer = _trainer(max_epochs=1)
    trainer.callbacks.append(callback)
    trainer.fit(model, _loader())
    summary = callback.compression_manager.summary
    assert summary["distillation_steps"] == 6
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)


def test_a_manager_of_another_module_is_refused():
    cm = prepare_compression(Lit(), _pruning())
    trainer = _trainer()
    trainer.callbacks.append(CompressionCallback(cm))
    with pytest.raises(TrainerCompressionError, match="different module"):
        trainer.fit(Lit(), _loader())


def test_several_optimizers_are_refused():
    model = Lit(optimizers=2)
    cm = prepare_compression(model, _pruning())
    trainer = _trainer()
    trainer.callbacks.append(CompressionCallback(cm))
    with pytest.raises(TrainerCompressionError, match="2 optimizers"):
        trainer.fit(model, _loader())


def test_the_callback_needs_a_manager_or_configs():
    with pytest.raises(ValueError, match="manager or configs"):
        CompressionCallback()


def test_the_runtime_does_not_import_lightning():
    code = (
        "import sys\n"
        "import neural_coder.runtime, neural_coder.runtime.training\n"
        "import neural_coder.runtime.integrations.hooks\n"
        "assert 'lightning' not in sys.modules and 'pytorch_lightning' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
