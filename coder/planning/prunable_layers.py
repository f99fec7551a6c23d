"""Pruning on a model of the file with nothing it prunes: the runtime (as INC) prunes
Linear and convolution weights and never the classifier head, the last Linear. A
recurrent model with one Linear output layer (an LSTMCell sequence predictor), a single
Linear (`model = nn.Linear(784, 10)`) or a Sequential with one Linear would train with the
hooks and end 0 % sparse, so the plan is refused."""

from __future__ import annotations

from neural_coder.analysis.index import Index, Scope
from neural_coder.analysis.layer_types import HOLDING_LINEARS, described_build, layers_of_model
from neural_coder.errors import AnalysisError


def refuse_nothing_to_prune(index: Index, model: str, scope: Scope) -> None:
    built = layers_of_model(index, model, scope)
    if built is None:
        return
    if any("Conv" in layer or layer in HOLDING_LINEARS for layer in built):
        return
    linears = built.count("Linear")
    if linears > 1:
        return
    others = sorted({layer for layer in built if layer != "Linear"})
    has = "one Linear, its classifier head" if linears else "no Linear or convolution layer"
    rest = f" (its other layers: {', '.join(others)})" if others else ""
    what, node = described_build(index, model, scope)
    raise AnalysisError(
        f"pruning prunes Linear and convolution weights but never the classifier head (the "
        f"last Linear), and {what} has {has}{rest}: "
        f"{model} would train with the pruning hooks and end 0 % sparse",
        path=index.source.path,
        line=index.source.line(node),
        hint="quantize it instead (--approach qat, ptq-static or ptq-dynamic), or prune a "
        "model with Linear or convolution layers before its head",
    )
