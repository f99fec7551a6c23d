"""prepare_compression / CompressionManager / CallBacks with fake compressors, the model
wrapper as the training loop sees it, the run summary, and one real one-shot run."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.ao.nn.quantized as nnq
from torch import nn

from neural_coder.runtime import training
from neural_coder.runtime.compressor import Compressor
from neural_coder.runtime.config import (
    ConfigValueError,
    DistillationConfig,
    PostTrainingQuantConfig,
    QuantizationAwareTrainingConfig,
    WeightPruningConfig,
)
from neural_coder.runtime.model import Model
from neural_coder.runtime.summary import (
    build_summary,
    count_quantized_modules,
    emit_summary,
    format_table,
    state_dict_size,
)
from neural_coder.runtime.training import CompressionManager, prepare_compression
from tests.runtime.conftest import TinyMLP, tiny_batches

HOOKS = [
    "on_train_begin",
    "on_epoch_begin",
    "on_step_begin",
    "on_after_compute_loss",
    "on_before_optimizer_step",
    "on_after_optimizer_step",
    "on_step_end",
    "on_epoch_end",
    "on_train_end",
    "on_before_eval",
    "on_after_eval",
]


class Recorder(Compressor):
    """Records every call into a shared journal; behaviour set per test."""

    journal: list[tuple[str, str]] = []

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        self.replaced: list[tuple[nn.Module, nn.Module]] = []
        self.loss_factor: float | None = None
        self.step_result: Any = None
        self.epoch_result: list[Any] = []
        self.extra_summary: dict[str, Any] = {}

    def _log(self, hook: str) -> None:
        Recorder.journal.append((self.kind, hook))

    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None:
        self.replaced.append((old, new))

    def finalize(self) -> None:
        self._log("finalize")

    def summary(self) -> dict[str, Any]:
        return dict(self.extra_summary)

    def on_train_begin(self, dataloader: Any = None) -> None:
        self._log("on_train_begin")

    def on_epoch_begin(self, epoch: int) -> None:
        self._log("on_epoch_begin")

    def on_step_begin(self, batch_id: int) -> Any:
        self._log("on_step_begin")
        return self.step_result

    def on_after_compute_loss(self, input, student_output, student_loss, teacher_output=None):  # noqa: A002
        self._log("on_after_compute_loss")
        if self.loss_factor is None:
            return None
        return student_loss * self.loss_factor

    def on_before_optimizer_step(self) -> None:
        self._log("on_before_optimizer_step")

    def on_after_optimizer_step(self) -> None:
        self._log("on_after_optimizer_step")

    def on_step_end(self) -> Any:
        self._log("on_step_end")
        return self.step_result

    def on_epoch_end(self) -> list[Any]:
        self._log("on_epoch_end")
        return list(self.epoch_result)

    def on_train_end(self) -> None:
        self._log("on_train_end")

    def on_before_eval(self) -> None:
        self._log("on_before_eval")

    def on_after_eval(self) -> None:
        self._log("on_after_eval")


class FakePruning(Recorder):
    kind = "pruning"


class FakeQAT(Recorder):
    kind = "qat"


class FakeDistillation(Recorder):
    kind = "distillation"


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Route the three training configs to the recording compressors."""
    monkeypatch.setitem(training._REGISTRY, "WeightPruningConfig", ("pruning", lambda: FakePruning))
    monkeypatch.setitem(
        training._REGISTRY, "QuantizationAwareTrainingConfig", ("quantization", lambda: FakeQAT)
    )
    monkeypatch.setitem(
        training._REGISTRY, "DistillationConfig", ("distillation", lambda: FakeDistillation)
    )
    Recorder.journal = []
    return Recorder.journal


def three_confs(teacher: nn.Module) -> list[Any]:
    return [
        DistillationConfig(teacher),
        WeightPruningConfig(target_sparsity=0.5),
        QuantizationAwareTrainingConfig(),
    ]


# -- construction -------------------------------------------------------------------
def test_one_compressor_per_config_in_list_order(fakes, tiny_mlp) -> None:
    confs = three_confs(TinyMLP())
    cm = prepare_compression(tiny_mlp, confs)
    assert isinstance(cm, CompressionManager)
    assert [c.kind for c in cm.compressors] == ["distillation", "pruning", "qat"]
    assert [c.conf for c in cm.compressors] == confs
    assert all(c.wrapper is cm.model for c in cm.compressors)
    assert cm.callbacks.callbacks_list == cm.compressors
    assert cm.conf.distillation is confs[0] and cm.conf.pruning is confs[1]
    assert cm.conf.quantization is confs[2]
    assert cm.fp32_model is tiny_mlp and cm.model.model is tiny_mlp
    assert cm.adaptor is cm.compressors[2]


def test_single_config_is_accepted(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, WeightPruningConfig())
    assert [c.kind for c in cm.compressors] == ["pruning"]
    assert cm.conf.quantization is None and cm.adaptor is None
    assert cm.model.framework == "pytorch"  # a pruning config keeps INC's eager framework


def test_two_configs_of_one_kind_are_refused(fakes, tiny_mlp) -> None:
    with pytest.raises(ConfigValueError, match="at most one config of each kind"):
        prepare_compression(tiny_mlp, [WeightPruningConfig(), WeightPruningConfig()])


@pytest.mark.parametrize("bad", [[], "pruning", {"target_sparsity": 0.5}])
def test_unknown_or_empty_configs_are_refused(fakes, tiny_mlp, bad) -> None:
    with pytest.raises(ConfigValueError, match="confs"):
        prepare_compression(tiny_mlp, bad)


def test_post_training_config_gets_a_hint(fakes, tiny_mlp) -> None:
    with pytest.raises(ConfigValueError, match=r"quantization\.fit"):
        prepare_compression(tiny_mlp, PostTrainingQuantConfig())


def test_non_module_model_is_refused(fakes) -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"):
        prepare_compression("model.pt", WeightPruningConfig())  # type: ignore[arg-type]


def test_real_registry_resolves_existing_compressors() -> None:
    from neural_coder.runtime.quant.qat import QATCompressor

    assert training.compressor_class(QuantizationAwareTrainingConfig()) is QATCompressor
    if importlib.util.find_spec("neural_coder.runtime.distillation.compressor"):
        from neural_coder.runtime.distillation import DistillationCompressor

        assert (
            training.compressor_class(DistillationConfig(nn.Linear(1, 1))) is DistillationCompressor
        )


# -- dispatch ---------------------------------------------------------------------------
def test_every_hook_runs_on_every_compressor_in_order(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, three_confs(TinyMLP()))
    cb = cm.callbacks
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_step_begin(0)
    cb.on_after_compute_loss(None, None, torch.tensor(1.0))
    cb.on_before_optimizer_step()
    cb.on_after_optimizer_step()
    cb.on_step_end()
    cb.on_epoch_end()
    cb.on_before_eval()
    cb.on_after_eval()
    cb.on_train_end()
    order = ["distillation", "pruning", "qat"]
    expected = [
        (kind, hook)
        for hook in HOOKS
        if hook not in ("on_train_end", "on_before_eval", "on_after_eval")
        for kind in order
    ]
    expected += [(k, "on_before_eval") for k in order] + [(k, "on_after_eval") for k in order]
    # every on_train_end first, then every finalize, both in list order
    expected += [(k, "on_train_end") for k in order] + [(k, "finalize") for k in order]
    assert fakes == expected


def test_manager_level_aliases(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, [WeightPruningConfig(), QuantizationAwareTrainingConfig()])
    for hook in HOOKS:
        args: tuple[Any, ...] = ()
        if hook in ("on_epoch_begin", "on_step_begin"):
            args = (0,)
        if hook == "on_after_compute_loss":
            args = (None, None, torch.tensor(1.0))
        getattr(cm, hook)(*args)
        assert fakes[-1][1] in (hook, "finalize")
    assert ("pruning", "on_after_optimizer_step") in fakes


def test_step_and_epoch_results_are_aggregated_like_inc(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, three_confs(TinyMLP()))
    distill, prune, qat = cm.compressors
    prune.step_result = "pruned"
    qat.step_result = 3
    distill.epoch_result = [1, 2]
    qat.epoch_result = [3]
    assert cm.callbacks.on_step_begin(0) == ["pruned", 3]
    assert cm.callbacks.on_step_end() == ["pruned", 3]
    assert cm.callbacks.on_epoch_end() == [1, 2, 3]


def test_loss_is_returned_unchanged_when_no_compressor_returns_one(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, [WeightPruningConfig(), QuantizationAwareTrainingConfig()])
    loss = torch.tensor(2.5, requires_grad=True)
    assert cm.callbacks.on_after_compute_loss(None, None, loss) is loss  # INC returns []


def test_loss_is_chained_through_compressors(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, three_confs(TinyMLP()))
    distill, prune, qat = cm.compressors
    distill.loss_factor = 2.0
    qat.loss_factor = 10.0  # receives the loss distillation returned
    out = cm.callbacks.on_after_compute_loss(None, None, torch.tensor(1.5))
    assert out.item() == pytest.approx(30.0)
    distill.loss_factor = None
    assert cm.callbacks.on_after_compute_loss(None, None, torch.tensor(1.5)).item() == 15.0


def test_train_end_runs_once_and_train_begin_is_forwarded(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, WeightPruningConfig())
    cm.callbacks.on_train_begin()
    cm.callbacks.on_train_begin()
    assert fakes.count(("pruning", "on_train_begin")) == 2  # compressors make it idempotent
    cm.callbacks.on_train_end()
    cm.callbacks.on_train_end()
    assert fakes.count(("pruning", "on_train_end")) == 1
    assert fakes.count(("pruning", "finalize")) == 1
    cm.callbacks.on_train_begin()  # a new session may end again
    cm.callbacks.on_train_end()
    assert fakes.count(("pruning", "finalize")) == 2


def test_train_end_without_train_begin_warns(fakes, tiny_mlp, caplog) -> None:
    cm = prepare_compression(tiny_mlp, WeightPruningConfig())
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        cm.callbacks.on_train_end()
    assert "without on_train_begin" in caplog.text
    assert ("pruning", "finalize") in fakes


def test_idempotent_qat_prepare_through_the_manager(tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    prepared = cm.model.model
    cm.callbacks.on_train_begin()
    assert cm.model.model is prepared


# -- the wrapper in the loop ---------------------------------------------------------------
def test_wrapper_forwards_calls_attributes_and_state_dict(fakes, tiny_mlp) -> None:
    tiny_mlp.custom_flag = "hello"
    cm = prepare_compression(tiny_mlp, WeightPruningConfig())
    model = cm.model
    assert isinstance(model, Model) and isinstance(model, nn.Module)
    x = torch.randn(2, 8)
    assert torch.equal(model(x), tiny_mlp(x))
    assert model.head is tiny_mlp.head and model.custom_flag == "hello"
    model.custom_flag = "changed"  # an inner attribute is assigned on the inner module
    assert tiny_mlp.custom_flag == "changed"
    assert list(model.state_dict()) == list(tiny_mlp.state_dict())
    assert not any(k.startswith("_model.") for k in model.state_dict())
    fresh = TinyMLP()
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.fc1.weight, tiny_mlp.fc1.weight)
    model.eval()
    assert not tiny_mlp.training and not tiny_mlp.fc1.training
    model.train()
    assert tiny_mlp.training
    # the user's optimizer built on the wrapper trains the inner parameters
    assert {id(p) for p in model.parameters()} == {id(p) for p in tiny_mlp.parameters()}
    with pytest.raises(AttributeError):
        _ = model.no_such_attribute


def test_model_replacement_notifies_every_compressor(fakes, tiny_mlp) -> None:
    cm = prepare_compression(tiny_mlp, [WeightPruningConfig(), DistillationConfig(TinyMLP())])
    new = TinyMLP()
    cm.model.model = new
    for c in cm.compressors:
        assert c.replaced == [(tiny_mlp, new)]
    x = torch.randn(1, 8)
    assert torch.equal(cm.model(x), new(x))
    cm.model.model = new  # the same module again: no notification
    assert all(len(c.replaced) == 1 for c in cm.compressors)


def test_wrapper_from_a_hugging_face_model(fakes) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        num_labels=3,
    )
    hf = transformers.BertForSequenceClassification(config)
    cm = prepare_compression(hf, WeightPruningConfig())
    model = cm.model
    assert model.config.num_labels == 3 and callable(model.save_pretrained)
    assert model.classifier is hf.classifier
    out = model(input_ids=torch.randint(0, 50, (2, 5)))
    assert out.logits.shape == (2, 3)


# -- summary -------------------------------------------------------------------------------
def test_summary_json_written_to_env_path(fakes, tiny_mlp, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out" / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(target))
    cm = prepare_compression(
        tiny_mlp, [WeightPruningConfig(target_sparsity=0.5), DistillationConfig(TinyMLP())]
    )
    prune, distill = cm.compressors
    prune.extra_summary = {"target_sparsity": 0.5, "sparsity": 0.49}
    distill.extra_summary = {"distillation_steps": 7}
    cm.callbacks.on_train_begin()
    cm.callbacks.on_train_end()
    data = json.loads(target.read_text())
    assert data["target_sparsity"] == 0.5 and data["sparsity"] == 0.49
    assert data["distillation_steps"] == 7 and data["quantized_modules"] == 0
    assert data["techniques"] == ["pruning", "distillation"]
    expected = state_dict_size(tiny_mlp)
    assert data["size_before_bytes"] == expected == data["size_after_bytes"]
    assert cm.summary == data


def test_summary_defaults_when_no_compressor_reports(
    fakes, tiny_mlp, tmp_path, monkeypatch
) -> None:
    target = tmp_path / "s.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(target))
    cm = prepare_compression(tiny_mlp, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    cm.callbacks.on_train_end()
    data = json.loads(target.read_text())
    assert data["target_sparsity"] is None and data["sparsity"] is None
    assert data["distillation_steps"] == 0 and data["quantized_modules"] == 0


def test_no_summary_file_without_env(fakes, tiny_mlp, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cm = prepare_compression(tiny_mlp, WeightPruningConfig())
    cm.callbacks.on_train_begin()
    cm.callbacks.on_train_end()
    assert list(tmp_path.iterdir()) == []
    assert cm.summary is not None and "size_after_bytes" in cm.summary


def test_summary_helpers_for_post_training_fit(tmp_path) -> None:
    model = nn.Sequential(nnq.Linear(4, 4), nn.ReLU(), nnq.Linear(4, 2))
    model.add_module("q", torch.ao.nn.quantized.Quantize(1.0, 0, torch.quint8))
    assert count_quantized_modules(model) == 2  # stubs are not counted
    assert count_quantized_modules(TinyMLP()) == 0
    fp32 = TinyMLP()
    summary = build_summary(Model(fp32), 12345, {"approach": "post_training_static_quant"})
    assert summary["size_before_bytes"] == 12345
    assert summary["size_after_bytes"] == state_dict_size(fp32)
    assert summary["approach"] == "post_training_static_quant"
    table = format_table(summary)
    assert "approach" in table and "model size" in table
    path = tmp_path / "explicit.json"
    emit_summary({**summary, "t": torch.tensor(0.25)}, path)
    assert json.loads(path.read_text())["t"] == 0.25


def test_summary_is_logged_on_the_runtime_logger(fakes, tiny_mlp, caplog) -> None:
    cm = prepare_compression(tiny_mlp, WeightPruningConfig())
    with caplog.at_level(logging.INFO, logger="neural_coder.runtime"):
        cm.callbacks.on_train_begin()
        cm.callbacks.on_train_end()
    assert "compression summary" in caplog.text and "model size" in caplog.text


# -- a real one-shot run --------------------------------------------------------------------
def _missing_compressors() -> list[str]:
    missing = []
    try:
        from neural_coder.runtime.pruning import PruningCompressor  # noqa: F401
    except ImportError:
        missing.append("neural_coder.runtime.pruning.PruningCompressor")
    try:
        from neural_coder.runtime.quant.qat import QATCompressor  # noqa: F401
    except ImportError:
        missing.append("neural_coder.runtime.quant.qat.QATCompressor")
    return missing


@pytest.mark.skipif(
    bool(_missing_compressors()),
    reason=f"not written yet: {', '.join(_missing_compressors())}",
)
def test_pruning_plus_qat_one_shot_canonical_loop(tmp_path, monkeypatch) -> None:
    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    torch.manual_seed(0)
    model = TinyMLP()
    confs = [
        WeightPruningConfig(
            target_sparsity=0.5, pattern="1x1", pruning_type="magnitude", start_step=0, end_step=20
        ),
        QuantizationAwareTrainingConfig(),
    ]
    cm = prepare_compression(model, confs)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    criterion = nn.CrossEntropyLoss()
    batches = tiny_batches(n=10)
    cm.callbacks.on_train_begin()
    model = cm.model
    step = 0
    for epoch in range(3):
        cm.callbacks.on_epoch_begin(epoch)
        for i, (x, y) in enumerate(batches):
            cm.callbacks.on_step_begin(i)
            out = model(x)
            loss = criterion(out, y)
            loss = cm.callbacks.on_after_compute_loss(x, out, loss)
            optimizer.zero_grad()
            loss.backward()
            cm.callbacks.on_before_optimizer_step()
            optimizer.step()
            cm.callbacks.on_after_optimizer_step()
            cm.callbacks.on_step_end()
            step += 1
        cm.callbacks.on_epoch_end()
    cm.callbacks.on_train_end()
    assert step == 30
    summary = json.loads(summary_path.read_text())
    assert summary["quantized_modules"] > 0
    assert summary["sparsity"] == pytest.approx(0.5, abs=0.05)
    # TinyMLP is too small for int8 to shrink it (scales and packing metadata dominate);
    # the size reduction is checked on real scripts in tests/e2e.
    assert summary["size_after_bytes"] > 0 and summary["size_before_bytes"] > 0
    with torch.no_grad():
        assert model(torch.randn(2, 8)).shape == (2, 4)
    saved = cm.save(tmp_path / "ckpt")
    from neural_coder.runtime.loading import load

    reloaded = load(Path(saved).parent, TinyMLP())
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), model(x))


def test_distillation_plus_qat_one_shot_with_real_compressors(tmp_path, monkeypatch) -> None:
    from neural_coder.runtime.config import IntermediateLayersKnowledgeDistillationLossConfig

    summary_path = tmp_path / "summary.json"
    monkeypatch.setenv("NEURAL_CODER_SUMMARY", str(summary_path))
    torch.manual_seed(0)
    teacher, student = TinyMLP(), TinyMLP()
    criterion_conf = IntermediateLayersKnowledgeDistillationLossConfig(
        layer_mappings=[[("fc2",), ("fc2",)]], add_origin_loss=True
    )
    cm = prepare_compression(
        student, [DistillationConfig(teacher, criterion_conf), QuantizationAwareTrainingConfig()]
    )
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)
    cm.callbacks.on_train_begin()
    model = cm.model
    changed = 0
    for i, (x, y) in enumerate(tiny_batches(n=6)):
        cm.callbacks.on_step_begin(i)
        out = model(x)
        user_loss = nn.functional.cross_entropy(out, y)
        loss = cm.callbacks.on_after_compute_loss(x, out, user_loss)
        changed += int(not torch.equal(loss, user_loss))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
    cm.callbacks.on_train_end()
    assert changed == 6  # the feature hooks survived the QAT preparation
    summary = json.loads(summary_path.read_text())
    assert summary["distillation_steps"] == 6 and summary["quantized_modules"] > 0
    assert summary["techniques"] == ["distillation", "qat"]


def test_runtime_logger_gets_a_stderr_handler_only_when_nothing_is_configured(monkeypatch) -> None:
    from neural_coder.runtime.summary import runtime_logger

    root = logging.getLogger()
    logger = logging.getLogger("neural_coder.runtime")
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(logger, "handlers", [])
    saved_level = logger.level
    logger.setLevel(logging.NOTSET)
    try:
        assert runtime_logger() is logger
        assert len(logger.handlers) == 1 and isinstance(logger.handlers[0], logging.StreamHandler)
        assert logger.getEffectiveLevel() == logging.INFO
        runtime_logger()
        assert len(logger.handlers) == 1  # added once
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
        runtime_logger()
        assert logger.handlers == []  # the application configured logging itself
        assert logger.getEffectiveLevel() == logging.INFO  # its handlers show the summary
        logger.setLevel(logging.ERROR)
        runtime_logger()
        assert logger.level == logging.ERROR  # a level the application set is kept
    finally:
        logger.setLevel(saved_level)
