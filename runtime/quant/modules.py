"""Modules of the eager (module-level) path.

When a model cannot be traced by torch.fx (Hugging Face models, models with
data-dependent control flow), each selected `nn.Linear` / `nn.ConvNd` at name
N is replaced, at name N, by an `Observed*` module that

* owns the *original* `weight` / `bias` Parameters (the user's optimizer keeps
  training them, pruning finds `.weight` at N, distillation hooks N by name);
* fake-quantizes (QAT) or observes (static calibration) its input activation,
  its weight and its output activation, so training sees int8 rounding.

`to_quantized()` turns it into a `Quantized*` module, still at N: the input is
quantized per tensor with the learned scale / zero point, the int8 kernel of
`torch.ao.nn.quantized` runs (x86 / fbgemm), and the int8 output is
dequantized, so the module is a drop-in float-in / float-out replacement.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.ao.nn.quantized as nnq
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.ao.nn.quantized.modules.utils import _quantize_weight
from torch.ao.quantization import QConfig

#: float conv class -> quantized conv class (padding_mode "zeros" only)
_CONV_TYPES: dict[type[nn.Module], int] = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}


def is_transposed_linear(module: nn.Module) -> bool:
    """transformers' `Conv1D` (GPT-2, DistilGPT2, GPT, ...): a Linear whose weight is
    stored transposed, (in_features, out_features). Known by its name and attributes,
    so the runtime needs no transformers import."""
    weight = getattr(module, "weight", None)
    return (
        type(module).__name__ == "Conv1D"
        and isinstance(weight, nn.Parameter)
        and weight.dim() == 2
        and tuple(weight.shape) == (getattr(module, "nx", None), getattr(module, "nf", None))
    )


def supports_eager(module: nn.Module) -> bool:
    """Exact nn.Linear / zero-padded nn.ConvNd / transformers' Conv1D (subclasses such as
    MultiheadAttention's out_proj are used through `.weight` by their parent and are left
    alone)."""
    if type(module) is nn.Linear or is_transposed_linear(module):
        return True
    if type(module) in _CONV_TYPES:
        conv: Any = module
        return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
    return False


def _activation_qparams(post_process: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    scale, zero_point = post_process.calculate_qparams()  # type: ignore[operator]
    return (
        scale.detach().reshape(()).to(torch.float32).cpu(),
        zero_point.detach().reshape(()).to(torch.int64).cpu(),
    )


class _Observed(nn.Module):
    """Shared part of the observed Linear / Conv."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def __init__(self, float_module: nn.Module, qconfig: QConfig, fake_quant_weight: bool) -> None:
        super().__init__()
        # the same Parameter objects (None bias registered as None, like nn.Linear)
        self.register_parameter("weight", float_module.weight)
        self.register_parameter("bias", float_module.bias)
        self.qconfig = qconfig
        self.fake_quant_weight = fake_quant_weight
        self.activation_pre_process = qconfig.activation()
        self.weight_fake_quant = qconfig.weight()
        self.activation_post_process = qconfig.activation()

    def observed_weight(self) -> torch.Tensor:
        """The weight as its fake-quant observer sees it ((out, in, ...) layout)."""
        return self.weight

    def _weight(self) -> torch.Tensor:
        weight = self.observed_weight()
        return self.weight_fake_quant(weight) if self.fake_quant_weight else weight

    def _qparams(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        in_scale, in_zp = _activation_qparams(self.activation_pre_process)
        out_scale, out_zp = _activation_qparams(self.activation_post_process)
        return in_scale, in_zp, out_scale, out_zp

    def _quantized_weight(self) -> torch.Tensor:
        weight = self.observed_weight().detach().contiguous().float().cpu()
        observer = self.weight_fake_quant.cpu()
        observer(weight)  # observe the final weights (what torch's from_float does)
        return _quantize_weight(weight, observer)

    def _float_bias(self) -> torch.Tensor | None:
        return None if self.bias is None else self.bias.detach().float().cpu()


class ObservedLinear(_Observed):
    """An `nn.Linear` during QAT or calibration (see the module docstring)."""

    def __init__(self, linear: nn.Linear, qconfig: QConfig, fake_quant_weight: bool) -> None:
        super().__init__(linear, qconfig, fake_quant_weight)
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation_pre_process(x)
        return self.activation_post_process(F.linear(x, self._weight(), self.bias))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def to_quantized(self) -> QuantizedLinear:
        in_scale, in_zp, out_scale, out_zp = self._qparams()
        q = QuantizedLinear(self.in_features, self.out_features, self.bias is not None)
        q.set_weight_bias(self._quantized_weight(), self._float_bias())
        q.scale = float(out_scale)
        q.zero_point = int(out_zp)
        q.set_input_qparams(in_scale, in_zp)
        return q


class ObservedTransposedLinear(ObservedLinear):
    """transformers' `Conv1D` during QAT or calibration: it keeps the original weight
    Parameter, shaped (in, out), and computes with its transpose, so the user's optimizer
    keeps training it; it becomes the same `QuantizedLinear` as an `nn.Linear` does."""

    def __init__(self, conv1d: nn.Module, qconfig: QConfig, fake_quant_weight: bool) -> None:
        _Observed.__init__(self, conv1d, qconfig, fake_quant_weight)
        self.in_features, self.out_features = conv1d.weight.shape

    def observed_weight(self) -> torch.Tensor:
        return self.weight.t()  # (out, in): the per-channel axis is the output one


class ObservedConv(_Observed):
    """An `nn.Conv1d/2d/3d` during QAT or calibration (see the module docstring)."""

    def __init__(self, conv: nn.Module, qconfig: QConfig, fake_quant_weight: bool) -> None:
        super().__init__(conv, qconfig, fake_quant_weight)
        self.float_type: type[nn.Module] = type(conv)
        for attr in (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "groups",
            "padding_mode",
            "_reversed_padding_repeated_twice",
        ):
            setattr(self, attr, getattr(conv, attr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation_pre_process(x)
        # the float class's own convolution (padding handling included) on our attributes
        y = self.float_type._conv_forward(self, x, self._weight(), self.bias)  # type: ignore[attr-defined]
        return self.activation_post_process(y)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )

    def to_quantized(self) -> nn.Module:
        in_scale, in_zp, out_scale, out_zp = self._qparams()
        cls = _QUANTIZED_CONV[_CONV_TYPES[self.float_type]]
        q = cls(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
        )
        q.set_weight_bias(self._quantized_weight(), self._float_bias())
        q.scale = float(out_scale)
        q.zero_point = int(out_zp)
        q.set_input_qparams(in_scale, in_zp)
        return q


class _InputQDQ:
    """Quantize the float input, run the int8 kernel, dequantize the output.

    The input scale / zero point are buffers, so they are in the state dict.
    """

    input_scale: torch.Tensor
    input_zero_point: torch.Tensor

    def _init_input_qparams(self) -> None:
        self.register_buffer("input_scale", torch.tensor(1.0))  # type: ignore[attr-defined]
        self.register_buffer("input_zero_point", torch.tensor(0, dtype=torch.int64))  # type: ignore[attr-defined]

    def set_input_qparams(self, scale: torch.Tensor, zero_point: torch.Tensor) -> None:
        self.input_scale = scale.clone()
        self.input_zero_point = zero_point.clone()

    def _qdq_forward(self, kernel: Any, x: torch.Tensor) -> torch.Tensor:
        if x.is_quantized:  # already int8 (a caller chaining quantized modules)
            return kernel(x)
        xq = torch.quantize_per_tensor(
            x.float(), self.input_scale, self.input_zero_point, torch.quint8
        )
        return kernel(xq).dequantize()


class QuantizedLinear(_InputQDQ, nnq.Linear):
    """`torch.ao.nn.quantized.Linear` that takes and returns float tensors."""

    def __init__(
        self, in_features: int, out_features: int, bias_: bool = True, dtype: Any = torch.qint8
    ) -> None:
        super().__init__(in_features, out_features, bias_, dtype=dtype)
        self._init_input_qparams()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._qdq_forward(super().forward, x)

    def _get_name(self) -> str:
        return "QuantizedLinear(float in/out)"


class _QuantizedConvMixin(_InputQDQ):
    """Extra state for the quantized conv classes, whose copy goes through __getstate__."""

    def __getstate__(self) -> tuple[Any, torch.Tensor, torch.Tensor]:
        return (super().__getstate__(), self.input_scale, self.input_zero_point)  # type: ignore[misc]

    def __setstate__(self, state: tuple[Any, torch.Tensor, torch.Tensor]) -> None:
        super().__setstate__(state[0])  # type: ignore[misc]
        self._init_input_qparams()
        self.set_input_qparams(state[1], state[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._qdq_forward(super().forward, x)  # type: ignore[misc]


def _conv_class(base: type[nn.Module]) -> type[nn.Module]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        base.__init__(self, *args, **kwargs)
        self._init_input_qparams()

    name = f"Quantized{base.__name__}"
    return type(
        name,
        (_QuantizedConvMixin, base),
        {
            "__init__": __init__,
            "__module__": __name__,
            "__qualname__": name,
            "_get_name": lambda self: f"{name}(float in/out)",
        },
    )


QuantizedConv1d = _conv_class(nnq.Conv1d)
QuantizedConv2d = _conv_class(nnq.Conv2d)
QuantizedConv3d = _conv_class(nnq.Conv3d)
_QUANTIZED_CONV: dict[int, Any] = {1: QuantizedConv1d, 2: QuantizedConv2d, 3: QuantizedConv3d}


class QuantizedEmbedding(nnq.Embedding):
    """torch.ao's weight-only int8 embedding, taking what the float one takes: the int8
    lookup refuses non-contiguous indices (BERT's token_type_ids are an expanded view)."""

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return super().forward(indices.contiguous())


class QuantizedEmbeddingBag(nnq.EmbeddingBag):
    """torch.ao's weight-only int8 embedding bag (sum mode), with contiguous inputs."""

    def forward(
        self,
        indices: torch.Tensor,
        offsets: torch.Tensor | None = None,
        per_sample_weights: torch.Tensor | None = None,
        compressed_indices_mapping: torch.Tensor | None = None,
    ) -> torch.Tensor:
        contiguous = [t if t is None else t.contiguous() for t in (offsets, per_sample_weights)]
        return super().forward(indices.contiguous(), *contiguous, compressed_indices_mapping)


def quantize_embedding(module: nn.Embedding | nn.EmbeddingBag, qconfig: QConfig) -> nn.Module:
    """The weight-only int8 copy of `module` (`qconfig`: torch.ao's float_qparams one)."""
    module.qconfig = qconfig  # what torch's from_float reads
    if isinstance(module, nn.EmbeddingBag):
        quantized: nn.Module = nnq.EmbeddingBag.from_float(module)
        quantized.__class__ = QuantizedEmbeddingBag  # from_float builds its own class
    else:
        quantized = nnq.Embedding.from_float(module)
        quantized.__class__ = QuantizedEmbedding
    del module.qconfig
    return quantized


def observe(module: nn.Module, qconfig: QConfig, fake_quant_weight: bool) -> _Observed:
    if type(module) is nn.Linear:
        return ObservedLinear(module, qconfig, fake_quant_weight)  # type: ignore[arg-type]
    if is_transposed_linear(module):
        return ObservedTransposedLinear(module, qconfig, fake_quant_weight)
    return ObservedConv(module, qconfig, fake_quant_weight)


def linear_from_transposed(module: nn.Module) -> nn.Linear:
    """An `nn.Linear` computing what transformers' `Conv1D` `module` does (a copy of its
    weight, transposed): for the post-training paths, which quantize a copy anyway."""
    in_features, out_features = module.weight.shape
    linear = nn.Linear(in_features, out_features, bias=module.bias is not None)
    linear.to(device=module.weight.device, dtype=module.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(module.weight.t())
        if module.bias is not None:
            linear.bias.copy_(module.bias)
    return linear


OBSERVED_TYPES = (ObservedLinear, ObservedConv)
