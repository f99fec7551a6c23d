"""Post-training quantization of a LightningModule (no Trainer run: the module and loaders
alone), and the loaders `lightning_calib_dataloader` takes from a fitted Trainer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch")

from neural_coder.runtime import quantization  # noqa: E402
from neural_coder.runtime.config import PostTrainingQuantConfig  # noqa: E402
from neural_coder.runtime.integrations.lightning_quantization import (  # noqa: E402
    lightning_calib_dataloader,
    lightning_example_inputs,
    quantized_lightning_module,
)


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten()
        )
        self.head = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.head(self.backbone(x))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self(x).argmax(-1) == y).float().mean())


def _loader(n=64):
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    )
    return DataLoader(data, batch_size=16)


def test_static_quantization_keeps_the_lightning_module_and_its_methods():
    torch.manual_seed(0)
    model = Classifier().eval()
    loader = _loader()
    result = quantization.fit(
        model, PostTrainingQuantConfig(approach="static"), calib_dataloader=loader
    )
    assert result is not None
    int8 = quantized_lightning_module(result, model)
    assert type(int8) is Classifier and int8 is not model  # a converted copy, same class
    assert result.q_config["path"] == "fx_children"
    assert sorted(result.q_config["quantized_ops"]) == ["backbone.0", "head"]
    assert isinstance(model.head, torch.nn.Linear)  # the fp32 module is left as it was
    x = next(iter(loader))[0]
    with torch.no_grad():
        error = (int8(x) - model(x)).abs().max() / model(x).abs().max()
    assert error < 0.1  # calibrated: int8 follows fp32 closely
    assert callable(int8.test_step) and isinstance(int8, pl.LightningModule)


def test_a_plain_module_is_still_traced_with_fx():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3)).eval()
    result = quantization.fit(
        model, PostTrainingQuantConfig(approach="static"), calib_dataloader=_loader()
    )
    assert result is not None and result.q_config["path"] == "fx"


def test_the_calibration_loader_is_the_validation_one_else_the_training_one():
    val, train = _loader(32), _loader(48)
    assert lightning_calib_dataloader(SimpleNamespace(val_dataloaders=[val, train])) is val
    assert lightning_calib_dataloader(SimpleNamespace(val_dataloaders={"a": val})) is val
    combined = SimpleNamespace(iterables=train)  # Lightning 2's CombinedLoader
    trainer = SimpleNamespace(val_dataloaders=None, train_dataloader=combined)
    assert lightning_calib_dataloader(trainer) is train
    x = lightning_example_inputs(trainer)
    assert torch.equal(x, next(iter(train))[0])  # the inputs of the first batch, no labels
    with pytest.raises(ValueError, match="no validation or training dataloader"):
        lightning_calib_dataloader(SimpleNamespace(val_dataloaders=None, train_dataloader=None))


def test_an_int8_candidate_is_not_tested_by_a_trainer_on_a_gpu():
    # int8 kernels run on the CPU only: the trial fails with the reason, the Trainer is not
    # called (it would move the module to the GPU and fail inside its test loop)
    from neural_coder.runtime.integrations.lightning_quantization import lightning_eval_func

    calls = []
    trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("cuda", 0)),
        test=lambda module, **kwargs: calls.append(module) or [{"test_acc": 0.5}],
    )
    evaluate = lightning_eval_func(trainer, "test")
    model = Classifier().eval()
    assert evaluate(model) == 0.5  # fp32 runs wherever the Trainer does
    int8 = quantization.fit(
        model, PostTrainingQuantConfig(approach="dynamic"), calib_dataloader=None
    )
    with pytest.raises(RuntimeError, match="int8 modules run on the CPU only"):
        evaluate(int8)
    assert len(calls) == 1


class ConvBnClassifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU()
        )
        self.head = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def test_each_child_is_an_fx_graph_with_its_batch_norm_fused_and_reloads(tmp_path):
    from neural_coder.runtime.loading import load

    torch.manual_seed(0)
    model = ConvBnClassifier()
    model.train()
    model(torch.randn(32, 1, 6, 6) * 2 + 1)  # BN statistics away from the identity
    model.eval()
    result = quantization.fit(
        model, PostTrainingQuantConfig(approach="static"), calib_dataloader=_loader()
    )
    int8 = result.model
    assert type(int8) is ConvBnClassifier
    # the conv child traced: conv + BN + ReLU fused into one int8 module, int8 between ops
    assert isinstance(int8.features, torch.fx.GraphModule)
    assert type(int8.features.get_submodule("0")).__name__ == "ConvReLU2d"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in int8.modules())
    assert sorted(result.q_config["quantized_ops"]) == ["features.0", "head"]
    assert isinstance(model.features[1], torch.nn.BatchNorm2d)  # the fp32 module keeps it
    x = next(iter(_loader()))[0]
    with torch.no_grad():
        expected = model(x)
        assert ((int8(x) - expected).abs().max() / expected.abs().max()) < 0.1
        result.save(tmp_path)
        again = load(tmp_path, ConvBnClassifier().eval())  # the recipe rebuilds the same
        assert type(again) is ConvBnClassifier
        assert torch.equal(again(x), int8(x))


class Branchy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(36, 3)

    def forward(self, x):
        x = x.flatten(1)
        if x.sum() > 1e9:  # data-dependent: FX cannot trace it
            x = x * 0
        return self.fc(x)


class BranchyClassifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.body = Branchy()

    def forward(self, x):
        return self.body(x)


def test_a_child_that_does_not_trace_is_quantized_module_by_module():
    torch.manual_seed(0)
    model = BranchyClassifier().eval()
    result = quantization.fit(
        model, PostTrainingQuantConfig(approach="static"), calib_dataloader=_loader()
    )
    int8 = result.model
    assert type(int8) is BranchyClassifier and type(int8.body) is Branchy
    assert type(int8.body.fc).__name__ == "QuantizedLinear"  # the eager int8 module
    assert result.q_config["quantized_ops"] == ["body.fc"]
