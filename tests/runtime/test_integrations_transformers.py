"""The Hugging Face Trainer integration: a tiny BERT (no downloads) trained a few steps on the CPU."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

pytest.importorskip("transformers")

from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    BertTokenizer,
    Trainer,
)

from neural_coder.runtime import quantization  # noqa: E402
from neural_coder.runtime.config import (  # noqa: E402
    AccuracyCriterion,
    DistillationConfig,
    KnowledgeDistillationLossConfig,
    PostTrainingQuantConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.integrations.hooks import INC_HOOKS  # noqa: E402
from neural_coder.runtime.integrations.transformers import (  # noqa: E402
    QAT_RECIPE_KEY,
    CompressionCallback,
    OptimizedModel,
    TrainerCompressionError,
    save_for_huggingface_upstream,
    trainer_eval_func,
    use_quantized_model,
    with_distillation,
)
from neural_coder.runtime.quant import get_backend  # noqa: E402
from neural_coder.runtime.training import prepare_compression  # noqa: E402

from ..inc.interop import inc_python, requires_inc  # noqa: E402
from .hf_models import (  # noqa: E402
    RandomTextDataset,
    SummedLossModel,
    compute_metrics,
    tiny_bert,
    training_args,
)

ROOT = Path(__file__).resolve().parents[2]
TRAIN = RandomTextDataset(128)
EVAL = RandomTextDataset(64, seed=1)
PROBE = RandomTextDataset(8, seed=3)
PROBE_INPUTS = {"input_ids": PROBE.ids, "attention_mask": torch.ones_like(PROBE.ids)}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """These models are tiny: a second intra-op thread gains nothing and, on a shared
    2-core box, busy-waiting threads make a run 10-40x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def int8_count(model: nn.Module) -> int:
    return get_backend().count_quantized_modules(model)


def pruning(end_step: int = 4) -> WeightPruningConfig:
    return WeightPruningConfig(target_sparsity=0.5, pattern="4x1", start_step=1, end_step=end_step)


def kd(model: nn.Module) -> DistillationConfig:
    torch.manual_seed(1)
    teacher = copy.deepcopy(model)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return DistillationConfig(teacher, KnowledgeDistillationLossConfig())


def make_trainer(
    model: nn.Module, tmp_path: Path, callbacks: list[Any] = (), cls: type = Trainer, **args: Any
) -> Trainer:
    return cls(
        model=model,
        args=training_args(str(tmp_path / "out"), **args),
        train_dataset=TRAIN,
        eval_dataset=EVAL,
        compute_metrics=compute_metrics,
        callbacks=list(callbacks),
    )


def compressed_run(
    tmp_path: Path, confs: Any, distill: bool = False, **args: Any
) -> tuple[Any, Trainer, nn.Module]:
    """prepare_compression + CompressionCallback (+ with_distillation) + train(), as generated."""
    model = tiny_bert()
    cm = prepare_compression(model, confs(model))
    trainer = make_trainer(model, tmp_path, [CompressionCallback(cm)], **args)
    if distill:
        assert with_distillation(trainer, cm) is trainer
    trainer.train()
    return cm, trainer, model


# -- the module itself -----------------------------------------------------------------
def test_import_without_transformers_names_the_fix() -> None:
    code = (
        "import sys; sys.modules['transformers'] = None\n"
        "import neural_coder.runtime.integrations.hooks\n"  # the transformers-free part imports
        "try:\n    import neural_coder.runtime.integrations.transformers\n"
        "except ImportError as e:\n    print('ERROR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        "ERROR neural_coder.runtime.integrations.transformers needs the transformers" in out.stdout
    )
    assert "pip install transformers" in out.stdout


class _Recorder:
    """A manager with only INC 2.x's hook names that records what the Trainer drives."""

    def __init__(self, model: nn.Module) -> None:
        self.model = type("Wrapper", (), {"model": model})()
        self.callbacks = self
        self.calls: list[tuple[str, Any]] = []
        self.before: dict[str, torch.Tensor] = {}

    def _weight(self) -> torch.Tensor:
        return self.model.model.classifier.weight

    def on_train_begin(self, dataloader: Any = None) -> None:
        self.calls.append(("on_train_begin", dataloader is not None))

    def on_epoch_begin(self, epoch: int) -> None:
        self.calls.append(("on_epoch_begin", epoch))

    def on_step_begin(self, batch_id: int) -> None:
        self.calls.append(("on_step_begin", batch_id))

    def on_after_compute_loss(
        self, input: Any, student_output: Any, student_loss: Any, teacher_output: Any = None
    ) -> Any:  # noqa: A002
        return student_loss

    def on_before_optimizer_step(self) -> None:
        weight = self._weight()
        self.before["weight"] = weight.detach().clone()
        self.calls.append(
            (
                "on_before_optimizer_step",
                weight.grad is not None and bool(weight.grad.abs().sum() > 0),
            )
        )

    def on_after_optimizer_step(self) -> None:
        weight = self._weight()
        self.calls.append(
            ("on_after_optimizer_step", not torch.equal(weight, self.before["weight"]))
        )

    def on_step_end(self) -> None:
        self.calls.append(("on_step_end", None))

    def on_epoch_end(self) -> list[Any]:
        self.calls.append(("on_epoch_end", None))
        return []

    def on_train_end(self) -> None:
        self.calls.append(("on_train_end", None))


def test_callback_drives_inc_hooks_in_the_trainers_order_with_accumulation(tmp_path: Path) -> None:
    model = tiny_bert()
    manager = _Recorder(model)
    # 80 samples / 16 = 5 micro-batches per epoch, accumulation 2 -> 3 optimizer steps per epoch
    trainer = Trainer(
        model=model,
        args=training_args(
            str(tmp_path / "out"), max_steps=-1, num_train_epochs=2, gradient_accumulation_steps=2
        ),
        train_dataset=RandomTextDataset(80),
        callbacks=[CompressionCallback(manager)],
    )
    trainer.train()
    step = [
        ("on_before_optimizer_step", True),  # gradients are there before the step
        ("on_after_optimizer_step", True),  # the weights moved: masks go on after the step
        ("on_step_end", None),
    ]
    expected: list[tuple[str, Any]] = [("on_train_begin", True)]
    for epoch in (0, 1):
        expected.append(("on_epoch_begin", epoch))
        for global_step in range(3 * epoch, 3 * epoch + 3):
            expected += [("on_step_begin", global_step), *step]
        expected.append(("on_epoch_end", None))
    expected.append(("on_train_end", None))
    assert manager.calls == expected
    assert {name for name, _ in manager.calls} | {"on_after_compute_loss"} == set(INC_HOOKS)


def test_a_manager_without_the_hooks_is_refused() -> None:
    with pytest.raises(TypeError, match="lacks on_train_begin"):
        CompressionCallback(object())


# -- training-time compression ------------------------------------------------------------
def test_pruning_reaches_the_target_on_the_trainers_model(tmp_path: Path) -> None:
    cm, trainer, model = compressed_run(tmp_path, lambda m: [pruning()])
    summary = cm.summary
    assert summary["pruning_target_reached"] is True
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    # the zeros are in the module the Trainer trained and evaluates
    assert trainer.model is model
    pruned = [n for n in summary["per_layer_sparsity"]]
    zeros = sum(int((model.get_submodule(n).weight == 0).sum()) for n in pruned)
    total = sum(model.get_submodule(n).weight.numel() for n in pruned)
    assert zeros / total == pytest.approx(summary["sparsity"], abs=1e-6)
    assert summary["pruning_steps_seen"] == trainer.state.global_step


def test_configs_compress_each_model_a_model_init_builds(tmp_path: Path) -> None:
    # Trainer(model_init=...) builds a model in __init__ and a new one at every train():
    # the callback prepares a manager on the model that is trained, not the discarded one
    built: list[nn.Module] = []

    def model_init() -> nn.Module:
        built.append(tiny_bert())
        return built[-1]

    callback = CompressionCallback(configs=[pruning()])
    trainer = Trainer(
        model_init=model_init,
        args=training_args(str(tmp_path / "out")),
        train_dataset=TRAIN,
        callbacks=[callback],
    )
    trainer.train()
    assert len(built) == 2 and trainer.model is built[-1]
    trained = callback.compression_manager
    assert trained.summary["pruning_target_reached"] is True
    weights = [m.weight for m in built[-1].modules() if isinstance(m, nn.Linear)]
    assert sum(int((w == 0).sum()) for w in weights) > 0
    trainer.train()  # a second run (a search's next trial) gets its own manager
    assert len(built) == 3 and callback.compression_manager is not trained
    assert callback.compression_manager.summary["pruning_target_reached"] is True


def test_pruning_counts_optimizer_steps_under_gradient_accumulation(tmp_path: Path) -> None:
    cm, trainer, _ = compressed_run(
        tmp_path, lambda m: [pruning(end_step=3)], gradient_accumulation_steps=2, max_steps=4
    )
    assert cm.summary["pruning_steps_seen"] == trainer.state.global_step == 4
    assert cm.summary["pruning_target_reached"] is True


def test_prune_until_fits_the_schedule_to_the_trainers_run(tmp_path: Path) -> None:
    """The generated shape: end_step is a placeholder, prune_until sets it at train begin."""
    model = tiny_bert()
    cm = prepare_compression(
        model, WeightPruningConfig(target_sparsity=0.5, start_step=1, end_step=1)
    )
    trainer = make_trainer(
        model, tmp_path, [CompressionCallback(cm, prune_until=0.8)], max_steps=10
    )
    trainer.train()
    (pruner,) = cm.compressors[0].pruners
    assert (pruner.schedule.start, pruner.schedule.end) == (1, 8)
    assert cm.summary["pruning_target_reached"] is True
    assert cm.summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="prune_until"):
        CompressionCallback(cm, prune_until=1.5)


def test_eval_with_compute_metrics_still_gets_labels(tmp_path: Path) -> None:
    cm, trainer, _ = compressed_run(tmp_path, lambda m: [pruning()])
    assert trainer.label_names == ["labels"]
    output = trainer.predict(EVAL)
    assert output.label_ids is not None and len(output.label_ids) == len(EVAL)
    assert "eval_accuracy" in trainer.evaluate()


def test_qat_trains_the_trainers_model_and_leaves_int8_in_the_manager(tmp_path: Path) -> None:
    cm, trainer, model = compressed_run(tmp_path, lambda m: [QuantizationAwareTrainingConfig()])
    assert cm.summary["qat_path"] == "eager"
    assert int8_count(cm.model.model) == cm.summary["quantized_modules"] > 0
    # the Trainer keeps its (fake-quant, float) model; it evaluates and matches the int8 one
    assert trainer.model is model and int8_count(model) == 0
    assert {"eval_loss", "eval_accuracy"} <= set(trainer.evaluate())
    with torch.no_grad():
        fake_quant = model.eval()(**PROBE_INPUTS).logits
        int8 = cm.model(**PROBE_INPUTS).logits
    assert torch.allclose(fake_quant, int8, atol=2e-2)
    assert getattr(model.config, QAT_RECIPE_KEY)["approach"] == "quant_aware_training"
    with pytest.raises(TrainerCompressionError, match="int8 model cannot be trained"):
        trainer.train()


class PlainLossModel(nn.Module):
    """FX can trace this one: without the in-place rule, QAT would build a new GraphModule."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(100, 16)
        self.fc = nn.Linear(16, 16)
        self.head = nn.Linear(16, 2)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(torch.relu(self.fc(self.embed(input_ids).mean(dim=1))))
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def test_qat_prepares_in_place_even_where_fx_could_trace(tmp_path: Path) -> None:
    model = PlainLossModel()
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    trainer = make_trainer(model, tmp_path, [CompressionCallback(cm)], max_steps=3)
    before = model.fc.weight.detach().clone()
    trainer.train()
    assert cm.summary["qat_path"] == "eager"
    assert int8_count(cm.model.model) == 2
    assert not torch.equal(model.fc.weight, before)  # the Trainer trained the prepared module


class _Swapping:
    """A manager whose QAT replaces the module at on_train_begin (INC's FX QAT does)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = type("Wrapper", (), {"model": model})()
        self.callbacks = self
        for name in INC_HOOKS:
            if not hasattr(self, name):
                setattr(self, name, lambda *a, **k: None)

    def on_train_begin(self, dataloader: Any = None) -> None:
        self.model.model = copy.deepcopy(self.model.model)


def test_a_manager_that_replaces_the_module_is_refused(tmp_path: Path) -> None:
    model = tiny_bert()
    trainer = make_trainer(model, tmp_path, [CompressionCallback(_Swapping(model))])
    with pytest.raises(TrainerCompressionError, match="replaced the model at on_train_begin"):
        trainer.train()


def test_the_trainer_must_get_the_bare_model(tmp_path: Path) -> None:
    model = tiny_bert()
    cm = prepare_compression(model, pruning())
    with pytest.raises(TrainerCompressionError, match="give it the bare model"):
        make_trainer(cm.model, tmp_path, [CompressionCallback(cm)])
    with pytest.raises(TrainerCompressionError, match="different module"):
        make_trainer(tiny_bert(), tmp_path, [CompressionCallback(cm)])
    trainer = make_trainer(tiny_bert(), tmp_path)
    trainer.add_callback(CompressionCallback(cm))  # no on_init_end: caught at train()
    with pytest.raises(TrainerCompressionError, match="different module"):
        trainer.train()


def test_distillation_changes_the_training_loss(tmp_path: Path) -> None:
    plain = make_trainer(tiny_bert(), tmp_path).train().training_loss
    cm, trainer, _ = compressed_run(tmp_path, lambda m: [kd(m)], distill=True)
    assert cm.summary["distillation_steps"] == trainer.state.global_step == 6
    assert trainer.state.log_history[-1]["train_loss"] != pytest.approx(plain, abs=1e-4)
    # evaluation losses are not distilled
    before = cm.summary["distillation_steps"]
    trainer.evaluate()
    assert cm.compressors[0].distillation_steps == before


def test_with_distillation_needs_a_distillation_config(tmp_path: Path) -> None:
    model = tiny_bert()
    cm = prepare_compression(model, pruning())
    with pytest.raises(ValueError, match="DistillationConfig"):
        with_distillation(make_trainer(model, tmp_path), cm)


class SmoothedLossTrainer(Trainer):
    """A subclass with its own loss (label smoothing by hand)."""

    calls = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[override]
        type(self).calls += 1
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = nn.functional.cross_entropy(outputs.logits, labels, label_smoothing=0.1)
        return (loss, outputs) if return_outputs else loss


def test_distillation_wraps_a_subclass_compute_loss(tmp_path: Path) -> None:
    model = tiny_bert()
    cm = prepare_compression(model, kd(model))
    trainer = make_trainer(model, tmp_path, [CompressionCallback(cm)], cls=SmoothedLossTrainer)
    teacher_kwargs: list[set[str]] = []
    cm.conf.distillation.teacher_model.register_forward_pre_hook(
        lambda module, args, kwargs: teacher_kwargs.append(set(kwargs)), with_kwargs=True
    )
    SmoothedLossTrainer.calls = 0
    with_distillation(trainer, cm)
    with_distillation(trainer, cm)  # a second call changes nothing
    trainer.train()
    assert SmoothedLossTrainer.calls == 6  # the override ran once per step, not twice
    assert cm.summary["distillation_steps"] == 6
    # the teacher got the labels the override popped (it runs on a copy of the inputs)
    assert len(teacher_kwargs) == 6 and all("labels" in k for k in teacher_kwargs)


def _one_sgd_step(tmp_path: Path, batch: int, accumulation: int) -> dict[str, torch.Tensor]:
    student = SummedLossModel(seed=0)
    teacher = SummedLossModel(seed=1)
    cm = prepare_compression(
        student, DistillationConfig(teacher, KnowledgeDistillationLossConfig())
    )
    trainer = Trainer(
        model=student,
        args=training_args(
            str(tmp_path / f"out{accumulation}"),
            max_steps=1,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            optim="sgd",
            learning_rate=0.5,
            max_grad_norm=0.0,
        ),
        train_dataset=TRAIN,
        callbacks=[CompressionCallback(cm)],
    )
    with_distillation(trainer, cm)
    assert trainer.model_accepts_loss_kwargs  # the loss is normalized over the accumulated batch
    trainer.train()
    return {k: v.detach().clone() for k, v in student.state_dict().items()}


def test_distillation_under_accumulation_weighs_like_one_big_batch(tmp_path: Path) -> None:
    whole = _one_sgd_step(tmp_path, batch=16, accumulation=1)
    accumulated = _one_sgd_step(tmp_path, batch=8, accumulation=2)
    for key, value in whole.items():
        assert torch.allclose(accumulated[key], value, atol=1e-6), key


@pytest.mark.parametrize("order", ["pruning+qat", "distillation+pruning+qat"])
def test_one_shot_combinations(tmp_path: Path, order: str) -> None:
    def confs(m: nn.Module) -> list[Any]:
        combo = [pruning(), QuantizationAwareTrainingConfig()]
        return [kd(m), *combo] if order.startswith("distillation") else combo

    cm, trainer, model = compressed_run(
        tmp_path, confs, distill=order.startswith("distillation"), gradient_accumulation_steps=2
    )
    summary = cm.summary
    assert summary["pruning_target_reached"] is True
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert int8_count(cm.model.model) == summary["quantized_modules"] > 0
    if order.startswith("distillation"):
        assert summary["distillation_steps"] == 2 * trainer.state.global_step
    assert "eval_accuracy" in trainer.evaluate()


# -- post-training quantization with a Trainer ----------------------------------------------
def test_fit_with_trainer_eval_func_then_use_the_int8_model(tmp_path: Path) -> None:
    trainer = make_trainer(tiny_bert(), tmp_path)
    trainer.train()
    fp32 = trainer.model
    baseline = trainer.evaluate()["eval_accuracy"]
    eval_func = trainer_eval_func(trainer, "eval_accuracy")
    assert eval_func(fp32) == baseline
    q = quantization.fit(
        trainer.model,
        PostTrainingQuantConfig(
            accuracy_criterion=AccuracyCriterion(higher_is_better=True, tolerable_loss=0.5)
        ),
        calib_dataloader=trainer.get_eval_dataloader(),
        eval_func=eval_func,
    )
    assert q is not None and int8_count(q.model) > 0
    assert trainer.model is fp32 and trainer.model_wrapped is fp32  # restored after each trial
    assert use_quantized_model(trainer, q) is trainer
    assert trainer.model is q.model and type(trainer.model) is BertForSequenceClassification
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] == pytest.approx(eval_func(q))
    trainer.save_model(str(tmp_path / "ptq"))
    loaded = OptimizedModel.from_pretrained(tmp_path / "ptq")
    with torch.no_grad():
        assert torch.equal(loaded(**PROBE_INPUTS).logits, q(**PROBE_INPUTS).logits)


def test_trainer_eval_func_lists_the_keys_it_has(tmp_path: Path) -> None:
    trainer = make_trainer(tiny_bert(), tmp_path)
    with pytest.raises(KeyError, match=r"did you mean 'eval_accuracy'.*'eval_loss'"):
        trainer_eval_func(trainer, "accuracy")(trainer.model)


def test_use_quantized_model_keeps_fp32_when_fit_returned_none(tmp_path: Path) -> None:
    trainer = make_trainer(tiny_bert(), tmp_path)
    model = trainer.model
    assert use_quantized_model(trainer, None).model is model


# -- saving and loading -----------------------------------------------------------------------------
def _same_outputs(a: nn.Module, b: nn.Module) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(**PROBE_INPUTS).logits, b.eval()(**PROBE_INPUTS).logits)


def test_qat_run_saves_and_loads_every_way(tmp_path: Path) -> None:
    cm, trainer, _ = compressed_run(tmp_path, lambda m: [QuantizationAwareTrainingConfig()])
    trainer.evaluate()  # frozen observers: evaluation does not move the scales
    int8 = cm.model.model

    trainer.save_model(str(tmp_path / "trainer"))
    from_trainer = OptimizedModel.from_pretrained(tmp_path / "trainer")
    assert int8_count(from_trainer) == int8_count(int8)
    assert _same_outputs(from_trainer, int8)
    plain = BertForSequenceClassification.from_pretrained(tmp_path / "trainer")  # QAT-trained float
    assert int8_count(plain) == 0

    cm.model.save_pretrained(tmp_path / "sp")
    assert not int8.config.architectures  # built from a config; the save does not set it here
    loaded = OptimizedModel.from_pretrained(tmp_path / "sp")  # the config names the class
    assert type(loaded) is BertForSequenceClassification
    assert _same_outputs(loaded, int8)
    # as rewritten scripts load it back: an Auto class given (built from the config)
    auto = OptimizedModel.from_pretrained(
        tmp_path / "sp", model_class=AutoModelForSequenceClassification
    )
    assert type(auto) is BertForSequenceClassification and _same_outputs(auto, int8)

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello"]) + "\n")
    upstream = tmp_path / "upstream"
    save_for_huggingface_upstream(cm.model, BertTokenizer(str(vocab)), upstream)
    assert {"pytorch_model.bin", "config.json", "tokenizer_config.json"} <= set(
        os.listdir(upstream)
    )
    config = json.loads((upstream / "config.json").read_text())
    assert config["dtype"] == "int8" and config["architectures"] == [
        "BertForSequenceClassification"
    ]
    assert getattr(int8.config, "dtype", None) != "int8"  # the model's own config is untouched
    assert _same_outputs(OptimizedModel.from_pretrained(upstream), int8)


def test_pruned_model_saves_as_a_normal_folder(tmp_path: Path) -> None:
    cm, trainer, model = compressed_run(tmp_path, lambda m: [pruning()])
    save_for_huggingface_upstream(cm.model, None, tmp_path / "pruned")
    trainer.save_model(str(tmp_path / "trainer"))
    for folder in ("pruned", "trainer"):
        loaded = OptimizedModel.from_pretrained(tmp_path / folder)
        assert type(loaded) is BertForSequenceClassification
        assert _same_outputs(loaded, model)


def test_optimized_model_is_built_with_from_pretrained() -> None:
    with pytest.raises(OSError, match="from_pretrained"):
        OptimizedModel()


# -- INC 2.x ----------------------------------------------------------------------------------------
@requires_inc
def test_the_same_hooks_drive_inc_2x(tmp_path: Path) -> None:
    """The Trainer's event order through `TrainerHooks` on INC 2.6's own manager (INC's
    environment has no transformers) and on ours: the same pruning, INC's FX QAT refused."""
    python = inc_python()
    assert python is not None
    shim = tmp_path / "shim" / "neural_coder"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("")
    (shim / "runtime").symlink_to(ROOT / "runtime")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        PYTHONPATH=str(tmp_path / "shim"),
        PYTHONWARNINGS="ignore",
        PYTHONNOUSERSITE="1",
        OMP_NUM_THREADS="1",
    )
    script = Path(__file__).with_name("hf_inc_hooks.py")
    proc = subprocess.run(
        [python, str(script), "inc"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    inc = json.loads(proc.stdout.strip().splitlines()[-1])

    from . import hf_inc_hooks

    ours = hf_inc_hooks.main("runtime")
    assert inc["missing_hooks"] == ours["missing_hooks"] == []
    assert inc["sparsity"] == ours["sparsity"]
    assert inc["sparsity"]["fc2"] > 0.3
    # prune_until rebuilt INC's pruners as iterative ones: the same gradual schedule as ours
    assert inc["fitted_trace"] == ours["fitted_trace"]
    assert 0 < inc["fitted_trace"][2] < inc["fitted_trace"][5] < inc["fitted_trace"][-1]
    assert inc["qat"].startswith("refused: the compression manager replaced the model")
    assert ours["qat"] == "trained in place"
