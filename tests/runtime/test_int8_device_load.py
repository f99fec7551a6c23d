"""int8 models loaded back (`load`, `OptimizedModel.from_pretrained`) in a GPU script: the
bare module INC returns, bridged in place (`int8_device.keep_on_cpu`) as the `Model`
wrapper of a `fit` result is: calls with inputs on another device run on the CPU and
give their outputs back there, `.to(device)` / `.cuda()` keep it on the CPU, casts are
refused; its class, `config`, `generate`, `model.model` and `state_dict` stay as they were.

Without a GPU the "other device" is `meta` (`first_device` is patched to say the inputs
came from it); the real-CUDA checks at the end skip where no GPU is present (CI)."""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from neural_coder.runtime import int8_device, quantization
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.loading import load
from neural_coder.runtime.model import Model
from neural_coder.runtime.quant import get_backend

from .conftest import TinyMLP, tiny_batches

META = torch.device("meta")


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int8_device, "_logged", set())


def saved_and_loaded(tmp_path: Path, approach: str = "dynamic") -> tuple[Model, nn.Module]:
    """A TinyMLP quantized by `fit`, saved with `save` and rebuilt with `load`."""
    torch.manual_seed(0)
    fitted = quantization.fit(
        TinyMLP(),
        PostTrainingQuantConfig(approach=approach),
        calib_dataloader=tiny_batches() if approach == "static" else None,
    )
    assert isinstance(fitted, Model)
    fitted.save(tmp_path)
    return fitted, load(tmp_path, TinyMLP())


@pytest.mark.parametrize("approach", ["dynamic", "static"])
def test_a_loaded_int8_model_is_the_bare_module_bridged_in_place(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    approach: str,
) -> None:
    fitted, loaded = saved_and_loaded(tmp_path, approach)
    assert not isinstance(loaded, Model)  # INC's load returns the module itself
    assert int8_device.kept_on_cpu(loaded) and get_backend().count_quantized_modules(loaded)
    assert list(loaded.state_dict()) == list(fitted.state_dict())
    x = torch.randn(5, 8)
    expected = loaded(x)
    assert torch.equal(expected, fitted(x))
    seen: list[torch.device] = []
    loaded.register_forward_hook(lambda _m, args, _out: seen.append(args[0].device))
    monkeypatch.setattr(int8_device, "first_device", lambda args, kwargs: META)
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        out = loaded(x)
        loaded(x)
    assert seen == [torch.device("cpu")] * 2  # the int8 kernels ran on the CPU
    assert out.device == META and out.shape == expected.shape
    notes = [r.getMessage() for r in caplog.records if "run on the CPU only" in r.getMessage()]
    assert len(notes) == 1 and "inputs on meta are moved to the CPU" in notes[0]


def test_to_a_gpu_keeps_the_loaded_model_on_the_cpu_and_casts_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, loaded = saved_and_loaded(tmp_path)
    x = torch.randn(4, 8)
    before = loaded(x)
    with caplog.at_level(logging.WARNING, logger="neural_coder.runtime"):
        assert loaded.to("cuda") is loaded  # no CUDA needed: nothing moves
        assert loaded.cuda() is loaded and loaded.cuda(0) is loaded
        assert loaded.to(torch.device("cuda:0"), non_blocking=True) is loaded
    notes = [r.getMessage() for r in caplog.records if "stays on the CPU" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith("model.to: ")
    assert all(t.device.type == "cpu" for t in [*loaded.parameters(), *loaded.buffers()])
    assert torch.equal(loaded.to("cpu").eval()(x), before)
    for cast in (
        lambda m: m.half(),
        lambda m: m.bfloat16(),
        lambda m: m.double(),
        lambda m: m.to(torch.float16),
    ):
        with pytest.raises(TypeError, match=r"an int8 model cannot be cast to torch\.\w+"):
            cast(loaded)


def copies(model: nn.Module) -> list[nn.Module]:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return [torch.load(buffer, weights_only=False), copy.deepcopy(model)]


def test_the_bridge_survives_pickling_and_deepcopy_and_is_set_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, loaded = saved_and_loaded(tmp_path, "dynamic")
    assert not isinstance(loaded, torch.fx.GraphModule)
    x = torch.randn(3, 8)
    for other in copies(loaded):
        assert int8_device.kept_on_cpu(other) and torch.equal(other(x), loaded(x))
        assert other.to("cuda") is other  # its own guard, not the original's
    hooks = len(loaded._forward_pre_hooks)
    assert int8_device.keep_on_cpu(loaded) is loaded and len(loaded._forward_pre_hooks) == hooks
    monkeypatch.setattr(int8_device, "first_device", lambda args, kwargs: META)
    assert load(tmp_path, TinyMLP())(x).device == META  # a fresh load is bridged as well


def test_a_graph_module_copy_is_bridged_again_by_keep_on_cpu(tmp_path: Path) -> None:
    """torch rebuilds a pickled or deep-copied GraphModule from its graph, without its
    forward hooks: the copy says it is not bridged, and keep_on_cpu bridges it once."""
    _, loaded = saved_and_loaded(tmp_path, "static")
    assert isinstance(loaded, torch.fx.GraphModule) and int8_device.kept_on_cpu(loaded)
    x = torch.randn(3, 8)
    for other in copies(loaded):
        if not int8_device.kept_on_cpu(other):
            assert int8_device.keep_on_cpu(other) is other
        assert int8_device.kept_on_cpu(other) and torch.equal(other(x), loaded(x))
        assert len(other._forward_pre_hooks) == len(loaded._forward_pre_hooks)
        assert other.to("cuda") is other


def test_a_float_checkpoint_loads_unbridged(tmp_path: Path) -> None:
    model = TinyMLP()
    Model(model).save(tmp_path)
    loaded = load(tmp_path, TinyMLP())
    assert not int8_device.kept_on_cpu(loaded)
    assert loaded.to(META).fc1.weight.device == META


# -- Hugging Face: OptimizedModel.from_pretrained ----------------------------------------------
def tiny_llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def llama_from_pretrained(tmp_path: Path) -> tuple[nn.Module, nn.Module]:
    from neural_coder.runtime.integrations.transformers import OptimizedModel

    fitted = quantization.fit(tiny_llama(), PostTrainingQuantConfig(approach="dynamic"))
    fitted.save_pretrained(tmp_path / "int8")
    return fitted, OptimizedModel.from_pretrained(tmp_path / "int8")


def test_from_pretrained_keeps_the_hugging_face_model_and_bridges_generate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import LlamaForCausalLM, LlamaModel

    fitted, loaded = llama_from_pretrained(tmp_path)
    assert type(loaded) is LlamaForCausalLM and isinstance(loaded.model, LlamaModel)
    assert loaded.config.hidden_size == 32 and int8_device.kept_on_cpu(loaded)
    ids = torch.randint(0, 100, (1, 5))
    calls: list[int] = []
    handle = loaded.register_forward_pre_hook(
        lambda _m, _args, kwargs: calls.append(kwargs["input_ids"].shape[-1]), with_kwargs=True
    )
    tokens = loaded.generate(ids, max_new_tokens=3, do_sample=False)
    handle.remove()
    assert len(calls) == 3  # every step went through the module's call, where the bridge is
    assert torch.equal(tokens, fitted.model.generate(ids, max_new_tokens=3, do_sample=False))
    monkeypatch.setattr(int8_device, "first_device", lambda args, kwargs: META)
    out = loaded(input_ids=ids)
    assert type(out).__name__ == "CausalLMOutputWithPast" and out.logits.device == META


def test_the_fit_results_inner_module_is_bridged_so_generate_through_the_wrapper_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fitted.generate(...)` reaches the inner module past the wrapper's forward: the
    inner int8 module is bridged in place as a loaded one is."""
    fitted, _ = llama_from_pretrained(tmp_path)
    assert isinstance(fitted, Model) and int8_device.kept_on_cpu(fitted.model)
    ids = torch.randint(0, 100, (1, 4))
    tokens = fitted.generate(ids, max_new_tokens=2, do_sample=False)
    assert tokens.shape == (1, 6)
    monkeypatch.setattr(int8_device, "first_device", lambda args, kwargs: META)
    assert fitted.model(input_ids=ids).logits.device == META  # the bare module, bridged


# -- real CUDA (skipped without a GPU) ------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_a_gpu_script_evaluates_a_loaded_int8_model(tmp_path: Path) -> None:
    fitted, _ = saved_and_loaded(tmp_path, "static")
    device = torch.device("cuda")
    model = load(tmp_path, TinyMLP().to(device)).to(device).eval()
    x = torch.randn(4, 8, device=device)
    with torch.no_grad():
        out = model(x)
    assert out.device.type == "cuda"
    assert torch.equal(out.cpu(), fitted(x.cpu()))


@cuda
def test_generate_with_inputs_on_a_gpu_runs_the_loaded_int8_model(tmp_path: Path) -> None:
    fitted, loaded = llama_from_pretrained(tmp_path)
    model = loaded.to("cuda")
    ids = torch.randint(0, 100, (1, 5))
    tokens = model.generate(ids.cuda(), max_new_tokens=3, do_sample=False)
    assert tokens.device.type == "cuda"
    assert torch.equal(tokens.cpu(), fitted.model.generate(ids, max_new_tokens=3, do_sample=False))


@cuda
def test_generate_through_the_fit_wrapper_with_inputs_on_a_gpu(tmp_path: Path) -> None:
    fitted, _ = llama_from_pretrained(tmp_path)
    model = fitted.to("cuda")
    ids = torch.randint(0, 100, (1, 5))
    tokens = model.generate(ids.cuda(), max_new_tokens=3, do_sample=False)
    assert tokens.device.type == "cuda"
    assert torch.equal(tokens.cpu(), fitted.generate(ids, max_new_tokens=3, do_sample=False))
