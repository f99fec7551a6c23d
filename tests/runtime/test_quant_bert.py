"""The eager (module-level) path on a tiny Hugging Face BERT, which torch.fx cannot trace."""

from __future__ import annotations

import pytest
import torch
import torch.ao.nn.quantized as nnq
import torch.ao.nn.quantized.dynamic as nnqd
from torch import nn

from neural_coder.runtime.quant import QuantSpec, get_backend, get_recipe, rebuild_quantized
from neural_coder.runtime.quant.backend import OpRule
from neural_coder.runtime.quant.modules import ObservedLinear, QuantizedLinear

transformers = pytest.importorskip("transformers")

FP32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}


def tiny_bert(seed: int = 0, **extra: float) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        **extra,
    )
    return transformers.BertForSequenceClassification(config)


def linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if type(m) is nn.Linear]


def toy_batch() -> dict[str, torch.Tensor]:
    """A learnable toy task: the label is whether the first token is below 50."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 100, (16, 8), generator=g)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": (ids[:, 0] < 50).long(),
    }


def rules(**kw: dict) -> tuple[OpRule, ...]:
    return tuple(OpRule.from_inc(p, by, e) for by, d in kw.items() for p, e in d.items())


def test_eager_qat_trains_the_original_parameters_and_converts(tmp_path):
    # no dropout: with the optimizer disconnected from the model the loss would not move
    model = tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    names = linear_names(model)
    assert len(names) == 14
    weights = {n: model.get_submodule(n).weight for n in names}
    initial = {n: w.detach().clone() for n, w in weights.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # built before preparation

    prepared = get_backend().prepare_qat(model, QuantSpec())
    assert prepared.path == "eager"
    assert prepared.fallback_reason  # the first line of the tracing error
    assert "\n" not in prepared.fallback_reason
    assert prepared.model is model  # the top-level object survives: HF attributes stay
    for name in names:
        module = model.get_submodule(name)
        assert isinstance(module, ObservedLinear) and module.weight is weights[name]
    opt_params = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert {id(p) for p in model.parameters()} == opt_params

    batch = toy_batch()
    losses = []
    for _ in range(10):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # Slow: the classifier's output fake-quant range starts at the random head's tiny
    # logits and its moving average (INC's and torch's 0.01) widens it slowly.
    assert losses[-1] < losses[0] - 1e-3
    for name in names:
        assert not torch.equal(model.get_submodule(name).weight, initial[name])

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        fake_quant = model.eval()(**inputs).logits
        int8 = get_backend().convert(prepared)
        logits = int8(**inputs).logits
    # a converted copy: the script's own `model` stays a working QAT model (HF save works)
    assert int8 is not model and isinstance(model.classifier, ObservedLinear)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file()
    for name in names:
        assert isinstance(int8.get_submodule(name), QuantizedLinear)
        assert isinstance(int8.get_submodule(name), nnq.Linear)
    assert get_backend().count_quantized_modules(int8) == 14
    assert logits.shape == (16, 2) and torch.isfinite(logits).all()
    assert (logits - fake_quant).abs().max() < 0.1 * fake_quant.abs().max()
    assert (logits.argmax(-1) == fake_quant.argmax(-1)).float().mean() >= 0.9
    # save_pretrained-style attributes are still there
    assert int8.config.num_labels == 2 and callable(int8.save_pretrained)
    assert int8.get_input_embeddings() is int8.bert.embeddings.word_embeddings
    recipe = get_recipe(int8)
    assert recipe["path"] == "eager" and recipe["framework"] == "pytorch"
    assert recipe["fallback_reason"] == prepared.fallback_reason


def test_eager_exclusions_by_name_and_type_use_fullmatch():
    backend = get_backend()
    # "query" alone does not fullmatch "bert.encoder.layer.0.attention.self.query"
    spec = QuantSpec(rules=rules(name={"query": FP32, "classifier": FP32, r".*\.key": FP32}))
    model = tiny_bert()
    prepared = backend.prepare_qat(model, spec)
    assert type(model.classifier) is nn.Linear
    assert type(model.bert.encoder.layer[0].attention.self.key) is nn.Linear
    assert isinstance(model.bert.encoder.layer[0].attention.self.query, ObservedLinear)
    int8 = backend.convert(prepared)
    assert backend.count_quantized_modules(int8) == 14 - 1 - 2
    assert spec.excluded_names == ("query", "classifier", r".*\.key")

    model = tiny_bert()
    int8 = backend.convert(
        backend.prepare_qat(model, QuantSpec(rules=rules(type={"Linear": FP32})))
    )
    assert backend.count_quantized_modules(int8) == 0
    # a name rule overrides a type rule
    spec = QuantSpec(
        rules=rules(type={"Linear": FP32}, name={"classifier": {"weight": {"dtype": ["int8"]}}})
    )
    int8 = backend.convert(backend.prepare_qat(tiny_bert(), spec))
    assert get_recipe(int8)["quantized_ops"] == ["classifier"]


def test_eager_per_tensor_weights_from_the_rules():
    spec = QuantSpec(rules=rules(type={"Linear": {"weight": {"granularity": ["per_tensor"]}}}))
    int8 = get_backend().convert(get_backend().prepare_qat(tiny_bert(), spec))
    weight = int8.classifier.weight()
    assert weight.qscheme() == torch.per_tensor_affine and weight.q_zero_point() == 0


def _calibrate(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        model(input_ids=torch.randint(0, 100, (8, 16), generator=g))


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out - ref).abs().mean() / ref.abs().mean()).item()


def test_static_and_dynamic_ptq_on_bert():
    backend = get_backend()
    model = tiny_bert().eval()
    ids = torch.randint(0, 100, (16, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(input_ids=ids).logits
        static = backend.quantize_static(model, QuantSpec(approach="static"), _calibrate)
        dynamic = backend.quantize_dynamic(model, QuantSpec(approach="dynamic"))
        assert torch.equal(model(input_ids=ids).logits, ref)  # the float model is untouched
        assert all(type(model.get_submodule(n)) is nn.Linear for n in linear_names(model))
        static_logits = static(input_ids=ids).logits
        dynamic_logits = dynamic(input_ids=ids).logits
    assert get_recipe(static)["path"] == "eager" and get_recipe(static)["fallback_reason"]
    # 14 Linears, and post-training also quantizes the 3 embeddings weight-only (as INC does)
    assert backend.count_quantized_modules(static) == 14 + 3
    assert isinstance(static.classifier, QuantizedLinear)
    assert isinstance(dynamic.classifier, nnqd.Linear)
    assert backend.count_quantized_modules(dynamic) == 14 + 3
    for int8 in (static, dynamic):
        embeddings = int8.bert.embeddings
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            assert type(getattr(embeddings, name)) is not nn.Embedding, name
    assert _rel_err(static_logits, ref) < 0.08
    assert _rel_err(dynamic_logits, ref) < 0.08


def test_rebuild_and_load_state_dict_round_trip_on_bert():
    backend = get_backend()
    ids = torch.randint(0, 100, (4, 8), generator=torch.Generator().manual_seed(3))
    model = tiny_bert()
    prepared = backend.prepare_qat(model, QuantSpec())
    model(input_ids=ids)  # one QAT forward so the observers hold real ranges
    qat = backend.convert(prepared)
    static = backend.quantize_static(tiny_bert().eval(), QuantSpec(approach="static"), _calibrate)
    dynamic = backend.quantize_dynamic(tiny_bert(), QuantSpec(approach="dynamic"))
    for int8 in (qat, static, dynamic):
        rebuilt = rebuild_quantized(tiny_bert(seed=7).eval(), get_recipe(int8))
        with torch.no_grad():
            assert not torch.equal(rebuilt(input_ids=ids).logits, int8(input_ids=ids).logits)
            rebuilt.load_state_dict(int8.state_dict())
            assert torch.equal(rebuilt(input_ids=ids).logits, int8(input_ids=ids).logits)
        # a plain dict copy has lost torch's per-module versions: loaded all the same
        plain = dict(int8.state_dict())
        with pytest.raises(KeyError):  # what torch does with it
            rebuild_quantized(tiny_bert(seed=7), get_recipe(int8)).load_state_dict(plain)
        rebuilt = rebuild_quantized(tiny_bert(seed=7), get_recipe(int8), state_dict=plain)
        with torch.no_grad():
            assert torch.equal(rebuilt(input_ids=ids).logits, int8(input_ids=ids).logits)
