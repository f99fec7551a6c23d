"""Post-training tuning reads the script's own evaluation: which function is a metric,
and which way it is better."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.options import build_options
from neural_coder.report import Status

SCRIPT = """import torch
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
loader = DataLoader(TensorDataset(torch.randn(64, 8), torch.randn(64, 1)), batch_size=16)
criterion = torch.nn.MSELoss()


@torch.no_grad()
def {name}(model, loader):
    model.eval()
    total = 0.0
    for x, y in loader:
        total += criterion(model(x), y).item()
    {result} = total / len(loader)
    return {result}


def run_inference(net, loader):
    preds = []
    with torch.no_grad():
        for x, _ in loader:
            preds.append(net(x))
    return torch.cat(preds)


print(run_inference(model, loader).shape)
print("metric", {name}(model, loader))
"""


def rewrite(text: str, approach: str = "ptq-static"):
    return rewrite_source(Path("script.py"), text, build_options(approach, "runtime", {}, {}))


@pytest.mark.parametrize(
    ("name", "result", "higher"),
    [
        ("validate", "val_loss", False),
        ("evaluate", "mse", False),
        ("perplexity", "value", False),
        ("evaluate", "accuracy", True),
    ],
)
def test_which_way_the_metric_is_better_comes_from_its_names(name, result, higher):
    out, report = rewrite(SCRIPT.format(name=name, result=result))
    assert report.status is Status.TRANSFORMED, report.message
    assert f"eval_func=lambda candidate: {name}(candidate, loader)," in out
    assert ("higher_is_better=False" in out) is not higher
    assert any(("lower is better" in line) is not higher for line in report.placed)


NEGATED_RESULT = SCRIPT.replace(
    "    {result} = total / len(loader)\n    return {result}\n", "    return {result}\n"
)


@pytest.mark.parametrize(
    ("result", "higher"),
    [
        # a loss negated so that larger is better (swa_utils / Optuna style)
        ("-total / len(loader)", True),
        ("-(total * 2) / len(loader)", True),
        ("total / len(loader)", False),
    ],
)
def test_a_negated_loss_is_higher_is_better(result, higher):
    out, report = rewrite(NEGATED_RESULT.format(name="val_loss", result=result))
    assert report.status is Status.TRANSFORMED, report.message
    assert ("higher_is_better=False" in out) is not higher


TUPLE_RESULT = SCRIPT.replace(
    "    {result} = total / len(loader)\n    return {result}\n",
    "    {result}\n    return {returned}\n",
)


@pytest.mark.parametrize(
    ("name", "computed", "returned", "higher"),
    [
        # the tuner reads the first item: an accuracy, though a loss comes with it
        ("test", "top1, losses = 1.0 - total, total", "top1, losses", True),
        ("validate", "vloss, acc = total, 1.0 - total", "vloss, acc", False),
        # the first item says nothing: the function's name decides
        ("eval_loss", "value, n = total, len(loader)", "value, n", False),
    ],
)
def test_a_tuple_is_tuned_on_its_first_item_and_so_is_its_direction(
    name, computed, returned, higher
):
    text = TUPLE_RESULT.format(name=name, result=computed, returned=returned)
    out, report = rewrite(text)
    assert report.status is Status.TRANSFORMED, report.message
    # INC's tuning asserts that eval_func returns a scalar or a list, not a tuple
    assert f"eval_func=lambda candidate: {name}(candidate, loader)[0]," in out
    assert ("higher_is_better=False" in out) is not higher
    assert any("its first value" in line for line in report.placed)


def test_a_function_that_returns_predictions_is_not_a_metric():
    text = SCRIPT.format(name="validate", result="val_loss").replace(
        'print("metric", validate(model, loader))\n', ""
    )
    out, report = rewrite(text, "ptq-dynamic")
    assert report.status is Status.TRANSFORMED, report.message
    assert "eval_func" not in out  # run_inference returns torch.cat(preds)
    assert any("without accuracy tuning" in w for w in report.warnings)


def test_a_loss_metric_tunes_the_right_way_when_the_script_runs(tmp_path, monkeypatch):
    out, _ = rewrite(SCRIPT.format(name="validate", result="val_loss"))
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(tmp_path / "summary.json"))
    namespace: dict = {}
    exec(compile(out, "script.py", "exec"), namespace)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quantized_modules"] > 0 and summary["final_metric"] is not None
    # lower is better: the accepted loss is at most 1 % above the fp32 loss
    assert summary["final_metric"] <= summary["baseline_metric"] * 1.01 + 1e-9
    assert all(t["accuracy"] is not None for t in summary["trials"])


def test_names_that_stand_for_each_other_do_not_loop_the_analysis():
    text = SCRIPT.format(name="validate", result="val_loss").replace(
        "    return val_loss\n", "    a = val_loss\n    val_loss = a\n    return val_loss\n"
    )
    out, report = rewrite(text)
    assert report.status is Status.TRANSFORMED, report.message
    assert "eval_func=lambda candidate: validate(candidate, loader)" in out


ENTITY_METRICS_TRAINER = """from transformers import Trainer


def main(args, model, train_ds, eval_ds, metric):
    def compute_metrics(p):
        results = metric.compute(predictions=p.predictions, references=p.label_ids)
        if args.return_entity_level_metrics:
            final_results = {}
            for key, value in results.items():
                final_results[key] = value
            return final_results
        return {"precision": results["overall_precision"], "f1": results["overall_f1"]}

    trainer = Trainer(model=model, train_dataset=train_ds, eval_dataset=eval_ds,
                      compute_metrics=compute_metrics)
    trainer.train()
    print(trainer.evaluate())
"""


def test_a_metric_branch_whose_keys_are_built_at_run_time_falls_back_to_eval_loss():
    """run_ner style: `--return_entity_level_metrics` returns a dict built key by key, so
    `eval_precision` exists on the default branch only; eval_loss is the fallback."""
    from pathlib import Path

    from neural_coder.api import rewrite_source
    from neural_coder.options import build_options

    options = build_options("ptq-dynamic", "runtime", {}, {})
    rewritten, report = rewrite_source(Path("ner.py"), ENTITY_METRICS_TRAINER, options)
    assert 'trainer_eval_func(trainer, ["eval_precision", "eval_loss"])' in rewritten, rewritten


@pytest.mark.parametrize(
    ("added", "higher"),
    [
        ("criterion(model(x), y).item()", False),
        ("torch.nn.functional.mse_loss(model(x), y, reduction='sum').item()", False),
        ("(model(x).round() == y).float().sum().item()", True),
    ],
)
def test_a_value_named_by_nothing_is_a_loss_when_it_sums_a_criterion(added, higher):
    # `def validate(): total += F.mse_loss(...).item(); return total / n` (a VAE's
    # reconstruction error) was tuned as higher-is-better: any worse candidate passed
    text = SCRIPT.format(name="validate", result="value").replace(
        "total += criterion(model(x), y).item()", f"total += {added}"
    )
    out, report = rewrite(text)
    assert report.status is Status.TRANSFORMED, report.message
    assert ("higher_is_better=False" in out) is not higher
