"""`trainer_eval_func` with several metric keys: the key is picked from what the first
`trainer.evaluate()` returns, `fit` tunes in that key's direction, and a clear error
names the keys when none is there. A stand-in Trainer whose evaluate() scores the model
it holds keeps this fast; the e2e test runs a real Trainer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from neural_coder.runtime import quantization
from neural_coder.runtime.config import AccuracyCriterion, PostTrainingQuantConfig
from neural_coder.runtime.integrations.transformers import trainer_eval_func
from neural_coder.runtime.tuning import criterion_for

INPUTS = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))


class StandInTrainer:
    """evaluate() returns `key`: the mean squared error of the model against a fixed
    reference, or for "eval_accuracy" the agreement of their argmax."""

    def __init__(self, model: nn.Module, key: str) -> None:
        self.model = self.model_wrapped = model
        self.key = key
        self.reference = model(INPUTS).detach()
        self.args = SimpleNamespace(device="cpu")

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            out = self.model(INPUTS)
        if self.key == "eval_accuracy":
            value = (out.argmax(1) == self.reference.argmax(1)).float().mean().item()
        else:
            value = ((out - self.reference) ** 2).mean().item()
        return {"eval_loss": 0.5, self.key: value, "epoch": 1.0}


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


@pytest.mark.parametrize(
    ("key", "higher_is_better"), [("eval_accuracy", True), ("eval_mse", False)]
)
def test_the_key_the_run_returns_is_used_with_its_direction(key, higher_is_better):
    net = model()
    trainer = StandInTrainer(net, key)
    evaluate = trainer_eval_func(trainer, ["eval_mse", "eval_accuracy"])
    assert getattr(evaluate, "higher_is_better", None) is None  # not known before a run
    evaluate(net)
    assert evaluate.metric_key == key and evaluate.higher_is_better is higher_is_better
    # the generated criterion says the first key's direction; the run decides
    written = AccuracyCriterion(tolerable_loss=0.01, higher_is_better=False)
    assert criterion_for(written, evaluate).higher_is_better is higher_is_better


def test_fit_tunes_on_the_key_found():
    net = model()
    trainer = StandInTrainer(net, "eval_accuracy")
    conf = PostTrainingQuantConfig(
        approach="dynamic",
        accuracy_criterion=AccuracyCriterion(tolerable_loss=0.01, higher_is_better=False),
    )
    q = quantization.fit(
        net, conf, eval_func=trainer_eval_func(trainer, ["eval_mse", "eval_accuracy"])
    )
    assert q is not None
    assert trainer.model is net  # restored after each evaluation
    assert any(isinstance(mod, torch.ao.nn.quantized.dynamic.Linear) for mod in q.model.modules())


def test_a_single_key_keeps_the_written_direction():
    net = model()
    evaluate = trainer_eval_func(StandInTrainer(net, "eval_mse"), "eval_mse")
    evaluate(net)
    written = AccuracyCriterion(higher_is_better=False)
    assert criterion_for(written, evaluate) is written


def test_no_key_found_names_what_is_there():
    net = model()
    evaluate = trainer_eval_func(StandInTrainer(net, "eval_f1"), ["eval_mse", "eval_accuracy"])
    with pytest.raises(KeyError, match=r"'eval_mse' or 'eval_accuracy'.*'eval_f1'"):
        evaluate(net)


class LabelFreeTrainer(StandInTrainer):
    """evaluate() as a question-answering Trainer's: compute_metrics' keys, bookkeeping,
    and no eval_loss (the eval features carry no labels)."""

    def evaluate(self) -> dict[str, float]:
        score = 1.0 - super().evaluate()["eval_mse"]
        return {"epoch": 1.0, "eval_runtime": 0.1, "eval_samples": 64, "eval_exact_match": score}


def test_eval_loss_missing_falls_back_to_the_scored_metric_higher_is_better(caplog):
    net = model()
    evaluate = trainer_eval_func(LabelFreeTrainer(net, "eval_mse"))
    with caplog.at_level("WARNING"):
        evaluate(net)
    assert evaluate.metric_key == "eval_exact_match" and evaluate.higher_is_better is True
    assert "no 'eval_loss'" in caplog.text and "eval_exact_match" in caplog.text
    written = AccuracyCriterion(higher_is_better=False)  # as generated for eval_loss
    assert criterion_for(written, evaluate).higher_is_better is True


def test_an_explicit_key_other_than_eval_loss_still_fails_when_missing():
    net = model()
    evaluate = trainer_eval_func(LabelFreeTrainer(net, "eval_mse"), "eval_accuracy")
    with pytest.raises(KeyError, match="'eval_accuracy'"):
        evaluate(net)
