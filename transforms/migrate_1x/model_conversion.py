"""`ModelConversion` (and the other TensorFlow-only 1.x components).

1.x ModelConversion converts a TensorFlow QAT model to a quantized one; 2.x has no
equivalent and PyTorch never had one. GraphOptimization (TensorFlow bf16 graph
rewriting) and NAS are not part of the 2.x compression API either. Their code is
left as it is, with a TODO at every statement that uses them.
"""

from __future__ import annotations

from .analysis import Component
from .plan import Ctx

WHY = {
    "model_conversion": "ModelConversion (TensorFlow QAT model conversion) has no 2.x equivalent and does not apply to PyTorch",
    "graph_optimization": "GraphOptimization is TensorFlow-only and has no 2.x API (for bf16 on PyTorch use mix_precision.fit with MixedPrecisionConfig)",
    "nas": "1.x NAS is not part of the 2.x compression API",
}


def plan(ctx: Ctx, comp: Component) -> None:
    why = WHY[comp.kind]
    ctx.note(comp.stmt, "TODO", f"`{comp.name}`: {why}; left as it is")
    seen = {id(comp.stmt)}  # one TODO per statement
    for use in comp.uses:
        if id(use.stmt) not in seen:
            seen.add(id(use.stmt))
            ctx.note(
                use.stmt, "TODO", f"`{comp.name}` is 1.x {comp.qualified.rsplit('.', 1)[-1]}: {why}"
            )
    ctx.handled.add(id(comp.ctor))
