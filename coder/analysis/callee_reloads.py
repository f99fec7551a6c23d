"""A function the model is handed to after the fit, which loads weights into it.

Kaggle-style inference builds one model and hands it, with the folds' state dicts, to a
function that loads each in turn (`inference(model, states, loader)` running
`model.load_state_dict(state["model"])` per fold, even per batch). A fit before that
call would be overwritten by float weights the quantized modules cannot take (a crash,
or the fp32 model run after all), so the post-training planner refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from .final_model import FinalModel, later_reads
from .index import Function, Index
from .weight_loads import loads_weights


@dataclass
class CalleeReload:
    call: cst.Call  # the call that hands the model over: inference(model, states, loader)
    function: Function
    load: cst.BaseStatement  # the statement of the function that loads the weights


def weights_loaded_by_callee(index: Index, place: FinalModel) -> CalleeReload | None:
    """The first call after `place` that hands its model to a function of the project
    which loads weights into that parameter (one call level deep)."""
    if "." in place.model:
        return None
    for statement in later_reads(index, place):
        for call in m.findall(statement, m.Call()):
            assert isinstance(call, cst.Call)
            fn = index.resolve_call(call)
            if fn is None:
                continue
            for param, value in index.bind_arguments(call, fn).items():
                if not m.matches(value, m.Name(place.model)):
                    continue
                for inner in m.findall(fn.node.body, m.SimpleStatementLine()):
                    assert isinstance(inner, cst.SimpleStatementLine)
                    rebinds = any(
                        m.matches(t.target, m.Name(param))
                        for a in m.findall(inner, m.Assign())
                        for t in a.targets  # type: ignore[attr-defined]
                    )  # `model = torch.load(path)` binds the callee's own name anew
                    if not rebinds and loads_weights(index, inner, param, fn.node):
                        return CalleeReload(call, fn, inner)
    return None
