"""ptq-dynamic on a model with no layer it converts (a convolution-only network): the fit
would hand back the fp32 model, so the plan is refused with the approach that does."""

from __future__ import annotations

from neural_coder.analysis.index import Index, Scope
from neural_coder.analysis.layer_types import DYNAMIC_QUANTIZABLE, class_of_model, torch_layers
from neural_coder.errors import AnalysisError


def refuse_nothing_to_quantize_dynamically(index: Index, model: str, scope: Scope) -> None:
    cls = class_of_model(index, model, scope)
    layers = torch_layers(index, cls) if cls is not None else None
    if layers is None or layers & DYNAMIC_QUANTIZABLE:
        return
    node = index.classes[cls]  # type: ignore[index]
    built = ", ".join(sorted(layers)) or "no torch.nn layer"
    raise AnalysisError(
        f"ptq-dynamic converts Linear, recurrent and embedding layers, and {cls} (line "
        f"{index.source.line(node)}) has none ({built}): the fit would keep {model} in fp32",
        path=index.source.path,
        line=index.source.line(node),
        hint="use --approach ptq-static (it converts convolutions too) or qat",
    )
