"""ptq-dynamic on a model with no layer it converts (a convolution-only network), or on a
model that is one layer itself (`model = nn.Linear(20, 3)`: torch's dynamic quantization
swaps the layers inside a model, not the model): the fit would hand back the fp32 model,
so the plan is refused with the approach that does."""

from __future__ import annotations

from neural_coder.analysis.index import Index, Scope
from neural_coder.analysis.layer_types import (
    DYNAMIC_QUANTIZABLE,
    described_build,
    layers_of_model,
    lone_torch_layer,
)
from neural_coder.errors import AnalysisError


def refuse_nothing_to_quantize_dynamically(index: Index, model: str, scope: Scope) -> None:
    lone = lone_torch_layer(index, model, scope)
    if lone is not None:
        raise AnalysisError(
            f"ptq-dynamic converts the layers inside a model, and {model} is one layer itself "
            f"({index.source.code(lone.func)} at line {index.source.line(lone)}): the fit "
            f"would keep {model} in fp32",
            path=index.source.path,
            line=index.source.line(lone),
            hint="use --approach ptq-static (it quantizes a lone layer) or qat",
        )
    layers = layers_of_model(index, model, scope)
    if layers is None or set(layers) & DYNAMIC_QUANTIZABLE:
        return
    what, node = described_build(index, model, scope)
    built = ", ".join(sorted(set(layers))) or "no torch.nn layer"
    raise AnalysisError(
        f"ptq-dynamic converts Linear, recurrent and embedding layers, and {what} has none "
        f"({built}): the fit would keep {model} in fp32",
        path=index.source.path,
        line=index.source.line(node),
        hint="use --approach ptq-static (it converts convolutions too) or qat",
    )
