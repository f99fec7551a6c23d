"""FX graph-mode quantization on a small Conv-BN-ReLU CNN (torch.ao backend)."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
import torch.ao.nn.intrinsic.quantized as nniq
import torch.ao.nn.quantized as nnq
import torch.ao.nn.quantized.dynamic as nnqd
import torch.nn.functional as F  # noqa: N812
from torch import nn

from neural_coder.runtime.quant import QuantSpec, get_backend, get_recipe, rebuild_quantized
from neural_coder.runtime.quant.backend import OpRule
from neural_coder.runtime.quant.modules import ObservedConv, QuantizedConv2d

FP32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.block(x)
        return self.fc(torch.flatten(self.pool(x), 1))


WEIGHTED = ["conv1", "block.0", "fc"]


def rules(**kw: dict) -> tuple[OpRule, ...]:
    """`rules(name={"fc": FP32})` -> the spec rules for op_name_dict={"fc": FP32}."""
    return tuple(OpRule.from_inc(p, by, e) for by, d in kw.items() for p, e in d.items())


def qat_train(
    model: nn.Module, spec: QuantSpec, steps: int = 8, lr: float = 0.01, momentum: float = 0.0
):
    """Optimizer built before preparation (the user's), then a few QAT steps."""
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    prepared = get_backend().prepare_qat(model, spec)
    xs, ys = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(prepared.model(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return prepared, opt, losses


def close(out: torch.Tensor, ref: torch.Tensor, rel: float) -> None:
    """Quantization noise, judged against the output's own scale (mean |ref|)."""
    err = (out - ref).abs().mean() / ref.abs().mean()
    assert err < rel, f"mean |int8 - fp32| is {err:.3f} of mean |fp32|"


def test_fx_qat_trains_the_original_parameters():
    torch.manual_seed(0)
    model = Net()
    originals = {name: model.get_submodule(name).weight for name in WEIGHTED}
    prepared, opt, losses = qat_train(model, QuantSpec(), steps=12, lr=0.05, momentum=0.9)
    assert (prepared.path, prepared.fallback_reason) == ("fx", None)
    qat = prepared.model
    # the optimizer's parameters are exactly the prepared model's parameters
    opt_params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert {id(p) for p in qat.parameters()} == opt_params
    for name, weight in originals.items():
        assert qat.get_submodule(name).weight is weight  # conv-bn fused at the conv's name
    assert type(qat.get_submodule("conv1")).__name__ == "ConvBnReLU2d"
    assert losses[-1] < 0.9 * losses[0]  # the user's optimizer trains the QAT model


def test_fx_qat_converts_to_int8_close_to_fp32():
    """The int8 kernels reproduce the fake-quant simulation closely; the gap to fp32 is
    the quantization noise itself, larger after a few steps than after a real run because
    the moving-average observers (averaging constant 0.01) still lag behind the weights."""
    torch.manual_seed(0)
    model = Net()
    prepared, _, _ = qat_train(model, QuantSpec(), steps=8)
    qat = prepared.model
    x = torch.randn(32, 3, 8, 8)
    with torch.no_grad():
        qat.eval()
        fake_quant = qat(x)
        int8 = get_backend().convert(prepared)
        fp32 = model.eval()(x)  # the float model shares the trained parameters
        out = int8(x)
    assert isinstance(int8.get_submodule("conv1"), nniq.ConvReLU2d)
    assert isinstance(int8.get_submodule("block.0"), nniq.ConvReLU2d)
    assert isinstance(int8.get_submodule("fc"), nnq.Linear)
    assert get_backend().count_quantized_modules(int8) == 3
    assert get_backend().count_quantized_modules(model) == 0
    # int8 kernels reproduce the fake-quant simulation; both track fp32
    assert (out - fake_quant).abs().max() < 0.1 * fake_quant.abs().max()
    close(out, fp32, rel=0.25)
    recipe = get_recipe(int8)
    assert recipe["approach"] == "quant_aware_training" and recipe["is_oneshot"]
    assert recipe["path"] == "fx" and sorted(recipe["quantized_ops"]) == sorted(WEIGHTED)


def test_fx_qat_excluded_conv_keeps_its_name_and_stays_float():
    model = Net()
    conv1 = model.conv1
    prepared, _, _ = qat_train(model, QuantSpec(rules=rules(name={"conv1": FP32})), steps=2)
    assert prepared.path == "fx"
    # not fused with its BN into a float ConvBnReLU2d (which would move it to conv1.0)
    assert prepared.model.get_submodule("conv1") is conv1 and type(conv1) is nn.Conv2d
    int8 = get_backend().convert(prepared)
    assert type(int8.get_submodule("conv1")) is nn.Conv2d
    assert get_recipe(int8)["quantized_ops"] == ["block.0", "fc"]
    assert int8(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_fx_exclusion_by_type_is_fullmatch():
    spec = QuantSpec(rules=rules(type={"Conv2d": FP32, "Lin": FP32}))  # "Lin" matches nothing
    prepared, _, _ = qat_train(Net(), spec, steps=1)
    int8 = get_backend().convert(prepared)
    assert get_recipe(int8)["quantized_ops"] == ["fc"]
    assert spec.excluded_types == ("Conv2d", "Lin")


def test_fx_granularity_and_scheme_from_the_rules():
    spec = QuantSpec(rules=rules(type={"Linear": {"weight": {"granularity": ["per_tensor"]}}}))
    prepared, _, _ = qat_train(Net(), spec, steps=1)
    int8 = get_backend().convert(prepared)
    fc_weight, conv_weight = int8.fc.weight(), int8.conv1.weight()
    assert fc_weight.qscheme() == torch.per_tensor_affine and fc_weight.q_zero_point() == 0
    assert conv_weight.qscheme() == torch.per_channel_affine  # per channel, symmetric:
    assert not conv_weight.q_per_channel_zero_points().any()


class WithUnused(Net):
    def __init__(self) -> None:
        super().__init__()
        self.aux = nn.Linear(8, 2)  # never called by forward


def test_fx_keeps_modules_forward_never_calls():
    model = WithUnused()
    prepared = get_backend().prepare_qat(model, QuantSpec())
    assert prepared.path == "fx"
    assert prepared.model.get_submodule("aux").weight is model.aux.weight


@pytest.mark.parametrize("path", ["fx", "eager"])
def test_replaced_modules_take_over_the_hooks_and_their_handles(path):
    """A hook keeps firing after preparation without re-registration, and removing it
    through its old handle then registering anew (on_model_replaced) leaves one."""
    model = Net()
    calls: list[str] = []
    handle = model.fc.register_forward_hook(lambda *_: calls.append("fc"))
    prepared = get_backend().prepare_qat(model, QuantSpec(path=path))
    new_fc = prepared.model.get_submodule("fc")
    assert new_fc is not model.fc or path == "eager"
    prepared.model(torch.randn(2, 3, 8, 8))
    assert calls == ["fc"]  # torch.ao alone would fire a copy here, and keep it forever
    handle.remove()
    new_fc.register_forward_hook(lambda *_: calls.append("again"))
    prepared.model(torch.randn(2, 3, 8, 8))
    assert calls == ["fc", "again"]


@pytest.mark.parametrize("hooked", ["block", "bn1"])
def test_a_hooked_module_fx_would_not_call_selects_the_eager_path(hooked):
    """FX calls leaf modules only (a container is inlined, a BN is fused into its conv)."""
    model = Net()
    outputs: list[torch.Tensor] = []
    model.get_submodule(hooked).register_forward_hook(lambda _m, _i, out: outputs.append(out))
    prepared = get_backend().prepare_qat(model, QuantSpec())
    assert prepared.path == "eager"
    assert prepared.fallback_reason == (
        f"_FxContractError: FX would no longer call the hooked module {hooked!r}"
    )
    prepared.model(torch.randn(2, 3, 8, 8))
    assert len(outputs) == 1 and outputs[0].shape[:2] == (2, 8)


class HookOwner:
    """A compressor-like hook owner that must not be copied with the model."""

    def __init__(self) -> None:
        self.calls = 0

    def hook(self, *_: object) -> None:
        self.calls += 1

    def __deepcopy__(self, memo: dict) -> HookOwner:
        raise AssertionError("the hook's owner was deep-copied")


def test_convert_copies_the_model_but_not_the_hook_owners():
    model = Net()
    prepared = get_backend().prepare_qat(model, QuantSpec())
    owner = HookOwner()
    prepared.model.fc.register_forward_hook(owner.hook)
    prepared.model(torch.randn(2, 3, 8, 8))
    int8 = get_backend().convert(prepared)
    assert int8 is not prepared.model and not int8.fc._forward_hooks
    prepared.model(torch.randn(2, 3, 8, 8))  # the QAT model still works, hook included
    int8(torch.randn(2, 3, 8, 8))
    assert owner.calls == 2


def test_forced_eager_path_quantizes_conv_at_its_name():
    model = Net()
    weight = model.conv1.weight
    prepared, _, _ = qat_train(model, QuantSpec(path="eager"), steps=6)
    assert prepared.path == "eager" and prepared.model is model
    assert isinstance(model.conv1, ObservedConv) and model.conv1.weight is weight
    x = torch.randn(16, 3, 8, 8)
    with torch.no_grad():
        fake_quant = model.eval()(x)
        int8 = get_backend().convert(prepared)
        out = int8(x)
    assert isinstance(int8.conv1, QuantizedConv2d) and isinstance(int8.fc, nnq.Linear)
    assert get_backend().count_quantized_modules(int8) == 3
    assert (out - fake_quant).abs().max() < 0.1 * fake_quant.abs().max()


def _calibrate(model: nn.Module) -> None:
    torch.manual_seed(1)
    for _ in range(4):
        model(torch.randn(8, 3, 8, 8))


def test_static_ptq_fx_leaves_the_float_model_alone():
    torch.manual_seed(0)
    model = Net().eval()
    x = torch.randn(32, 3, 8, 8)
    with torch.no_grad():
        ref = model(x)
        int8 = get_backend().quantize_static(model, QuantSpec(approach="static"), _calibrate)
        out = int8(x)
        assert torch.equal(model(x), ref) and type(model.conv1) is nn.Conv2d
    assert get_backend().count_quantized_modules(int8) == 3
    assert get_recipe(int8)["approach"] == "post_training_static_quant"
    assert get_recipe(int8)["path"] == "fx"
    close(out, ref, rel=0.05)


def test_dynamic_ptq_quantizes_the_linear():
    torch.manual_seed(0)
    model = Net().eval()
    x = torch.randn(8, 3, 8, 8)
    int8 = get_backend().quantize_dynamic(model, QuantSpec(approach="dynamic"))
    assert isinstance(int8.fc, nnqd.Linear) and type(model.fc) is nn.Linear
    assert get_backend().count_quantized_modules(int8) == 1
    with torch.no_grad():
        close(int8(x), model(x), rel=0.02)


def test_rebuild_and_load_state_dict_round_trip():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    prepared, _, _ = qat_train(Net(), QuantSpec(), steps=3)
    qat = get_backend().convert(prepared)
    static = get_backend().quantize_static(Net().eval(), QuantSpec(approach="static"), _calibrate)
    dynamic = get_backend().quantize_dynamic(Net(), QuantSpec(approach="dynamic"))
    for int8 in (qat, static, dynamic):
        # what Model.save / load do: state dict + recipe, read back with weights_only=True
        buffer = io.BytesIO()
        torch.save({"state": int8.state_dict(), "best_configure": get_recipe(int8)}, buffer)
        buffer.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: TypedStorage is deprecated
            saved = torch.load(buffer, weights_only=True)
        rebuilt = rebuild_quantized(Net(), saved["best_configure"])  # fresh fp32 weights
        with torch.no_grad():
            assert not torch.equal(rebuilt(x), int8(x))
            rebuilt.load_state_dict(saved["state"])
            assert torch.equal(rebuilt(x), int8(x))
