"""`Model.save` / `load`: fp32 round trip, INC-prefixed keys, nesting, and an int8 QAT model."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from neural_coder.runtime import load as package_load
from neural_coder.runtime.config import QuantizationAwareTrainingConfig
from neural_coder.runtime.loading import load
from neural_coder.runtime.model import BEST_CONFIGURE, CHECKPOINT_NAME, Model
from neural_coder.runtime.training import prepare_compression
from tests.runtime.conftest import TinyMLP, tiny_batches


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[nn.Module, nn.Module]] = []

    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None:
        self.calls.append((old, new))


def test_package_reexports_load() -> None:
    assert package_load is load


def test_fp32_round_trip_from_folder_and_file(tiny_mlp, tmp_path: Path) -> None:
    wrapper = Model(tiny_mlp)
    path = wrapper.save(tmp_path / "out")
    assert Path(path) == tmp_path / "out" / CHECKPOINT_NAME
    saved = torch.load(path, weights_only=True)
    assert BEST_CONFIGURE not in saved
    assert set(saved) == set(tiny_mlp.state_dict())  # no "_model." prefix
    for source in (tmp_path / "out", path, saved):
        fresh = TinyMLP()
        restored = load(source, fresh)
        assert restored is fresh
        for key, value in tiny_mlp.state_dict().items():
            assert torch.equal(restored.state_dict()[key], value)


def test_save_defaults_to_the_workspace(tiny_mlp, tmp_path: Path, monkeypatch) -> None:
    from neural_coder.runtime import config

    monkeypatch.setattr(config.options, "workspace", str(tmp_path / "ws"))
    path = Model(tiny_mlp).save()
    assert Path(path) == tmp_path / "ws" / CHECKPOINT_NAME


def test_q_config_is_saved_under_best_configure(tiny_mlp, tmp_path: Path) -> None:
    wrapper = Model(tiny_mlp)
    wrapper.q_config = {"format": "example", "approach": "qat"}
    saved = torch.load(wrapper.save(tmp_path), weights_only=True)
    assert saved[BEST_CONFIGURE] == {"format": "example", "approach": "qat"}
    assert wrapper.q_config is not None and not hasattr(tiny_mlp, "q_config")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=CHECKPOINT_NAME):
        load(tmp_path, TinyMLP())
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt", TinyMLP())
    (tmp_path / "best_configure.yaml").write_text("a: 1\n")
    with pytest.raises(ValueError, match="1.x"):
        load(tmp_path, TinyMLP())
    with pytest.raises(RuntimeError):  # wrong architecture
        load(Model(nn.Linear(8, 2)).state_dict(), TinyMLP())


def test_load_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT_NAME
    torch.save({"fc1.weight": torch.zeros(1), "obj": Listener()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load(tmp_path, TinyMLP())


def test_inc_prefixed_state_dicts_are_accepted(tiny_mlp) -> None:
    prefixed = {"_model." + k: v for k, v in tiny_mlp.state_dict().items()}
    wrapper = Model(TinyMLP())
    wrapper.load_state_dict(prefixed)
    assert torch.equal(wrapper.model.fc1.weight, tiny_mlp.fc1.weight)
    restored = load(prefixed, TinyMLP())
    assert torch.equal(restored.head.bias, tiny_mlp.head.bias)


def test_parent_module_saves_and_loads_the_wrapper_without_prefix(tiny_mlp) -> None:
    parent = nn.Sequential(Model(tiny_mlp), nn.Linear(4, 2))
    state = parent.state_dict()
    assert "0.fc1.weight" in state and not any("_model" in k for k in state)
    other = nn.Sequential(Model(TinyMLP()), nn.Linear(4, 2))
    result = other.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(other[0].model.fc2.weight, tiny_mlp.fc2.weight)


def test_wrapper_copies_have_no_listeners(tiny_mlp) -> None:
    wrapper = Model(tiny_mlp)
    listener = Listener()
    wrapper.add_listener(listener)
    wrapper.add_listener(listener)  # registered once
    clone = copy.deepcopy(wrapper)
    clone.model = TinyMLP()
    assert listener.calls == []
    new = TinyMLP()
    wrapper.model = new
    assert listener.calls == [(tiny_mlp, new)]
    wrapper.remove_listener(listener)
    wrapper.model = TinyMLP()
    assert len(listener.calls) == 1


def test_wrapper_unwraps_wrappers_and_checks_types(tiny_mlp) -> None:
    inner = Model(tiny_mlp)
    assert Model(inner).model is tiny_mlp
    with pytest.raises(TypeError):
        Model("not a module")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        inner.model = 3  # type: ignore[assignment]
    seq = Model(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    assert len(seq) == 2 and isinstance(seq[0], nn.Linear) and len(list(seq)) == 2


def test_framework_is_written_back_like_inc(tiny_mlp) -> None:
    conf = QuantizationAwareTrainingConfig()
    assert Model(tiny_mlp, conf=conf).framework == "pytorch_fx"
    assert conf.framework == "pytorch_fx"
    assert Model(tiny_mlp, conf=QuantizationAwareTrainingConfig(backend="ipex")).framework == (
        "pytorch_ipex"
    )
    assert Model(tiny_mlp).framework == "pytorch_fx"


def test_int8_qat_model_round_trip(tmp_path: Path) -> None:
    """QAT through the manager, `cm.save`, then `load` rebuilds the int8 structure."""
    torch.manual_seed(0)
    model = TinyMLP()
    cm = prepare_compression(model, QuantizationAwareTrainingConfig())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    cm.callbacks.on_train_begin()
    model = cm.model
    for i, (x, y) in enumerate(tiny_batches(n=4)):
        cm.callbacks.on_step_begin(i)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cm.callbacks.on_after_optimizer_step()
    cm.callbacks.on_train_end()
    assert cm.model.q_config is not None
    assert cm.summary is not None and cm.summary["quantized_modules"] > 0
    path = cm.save(tmp_path)
    assert BEST_CONFIGURE in torch.load(path, weights_only=True)
    fp32 = TinyMLP()
    reloaded = load(tmp_path, fp32)
    assert reloaded is not fp32
    x = torch.randn(5, 8)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), cm.model(x))


def test_save_pretrained_of_an_int8_hugging_face_model_round_trips(tmp_path):
    """An int8 HF model cannot go through safetensors; the wrapper writes the config
    and the runtime checkpoint instead, and `load` rebuilds the same model."""
    transformers = pytest.importorskip("transformers")
    from neural_coder.runtime import load
    from neural_coder.runtime.config import QuantizationAwareTrainingConfig
    from neural_coder.runtime.training import prepare_compression

    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    fp32 = transformers.BertForSequenceClassification(config)
    cm = prepare_compression(fp32, QuantizationAwareTrainingConfig())
    cm.callbacks.on_train_begin()
    model = cm.model
    ids = torch.randint(1, 100, (4, 8))
    model(input_ids=ids).logits.sum().backward()
    cm.callbacks.on_train_end()
    model.save_pretrained(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["architectures"] == ["BertForSequenceClassification"]  # as HF writes it
    assert model.config.architectures is None  # the live config is not touched
    restored = load(tmp_path / "out", transformers.BertForSequenceClassification(config))
    model.eval()
    restored.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, restored(input_ids=ids).logits)


def test_int8_save_pretrained_loads_with_optimized_model_without_model_class(tmp_path):
    """The config written names the class, so no `model_class=` is needed to load it."""
    transformers = pytest.importorskip("transformers")
    from neural_coder.runtime.config import QuantizationAwareTrainingConfig
    from neural_coder.runtime.integrations.transformers import OptimizedModel
    from neural_coder.runtime.training import prepare_compression

    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    cm = prepare_compression(
        transformers.BertForQuestionAnswering(config), QuantizationAwareTrainingConfig()
    )
    cm.callbacks.on_train_begin()
    ids = torch.randint(1, 100, (2, 8))
    cm.model(input_ids=ids).start_logits.sum().backward()
    cm.callbacks.on_train_end()
    cm.model.save_pretrained(tmp_path / "qa")
    loaded = OptimizedModel.from_pretrained(tmp_path / "qa")
    assert type(loaded) is transformers.BertForQuestionAnswering
    cm.model.eval()
    with torch.no_grad():
        want, got = cm.model(input_ids=ids), loaded.eval()(input_ids=ids)
    assert torch.equal(want.start_logits, got.start_logits)
    assert torch.equal(want.end_logits, got.end_logits)


def test_bf16_model_round_trip(tiny_mlp, tmp_path: Path) -> None:
    """A `mix_precision.fit` result has no q_config: `save` records its bf16 modules, so
    `load` converts the same ones (a copy of the float model) before loading the weights."""
    from neural_coder.runtime.bf16 import BF16Linear, convert

    names = [n for n, m in tiny_mlp.named_modules() if type(m) is nn.Linear]
    wrapper = Model(convert(tiny_mlp, names[:1]))
    path = wrapper.save(tmp_path / "bf16")
    assert torch.load(path, weights_only=True)[BEST_CONFIGURE] == {
        "precision": "bf16",
        "bf16_modules": names[:1],
    }
    fresh = TinyMLP()
    restored = load(tmp_path / "bf16", fresh)
    assert restored is not fresh and not isinstance(fresh.get_submodule(names[0]), BF16Linear)
    first = restored.get_submodule(names[0])
    assert isinstance(first, BF16Linear) and first.weight.dtype == torch.bfloat16
    assert all(type(restored.get_submodule(n)) is nn.Linear for n in names[1:])
    x = torch.randn(3, first.in_features)
    assert torch.equal(restored(x), wrapper(x))
