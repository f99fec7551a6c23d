"""The dataloader a script evaluates on, as a stand-in for calibration data.

A 1.x yaml could build the calibration dataloader from a dataset description
(`quantization.calibration.dataloader.dataset`); 2.x takes the loader in code. When
the script gives none, the loader its evaluation reads is the nearest data it has:
`eval_dataloader` when set, else the loader the `eval_func` iterates over (a function
of the file: `for x, y in val_loader`, or a lambda calling one with the loader).
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import Scope

from neural_coder.transforms import match as m

from .codegen import code_of

_WRAPPERS = ("enumerate", "tqdm", "iter", "tqdm.tqdm")


def loader_of_eval(
    module: cst.Module, eval_func: str | None, eval_loader: str | None, scope: Scope
) -> tuple[str, str] | None:
    """(loader expression, where it comes from) or None. The loader must be a name the
    component's scope sees."""
    if eval_loader is not None:
        return eval_loader, "`eval_dataloader`"
    if eval_func is None:
        return None
    try:
        expr = cst.parse_expression(eval_func)
    except cst.ParserSyntaxError:
        return None
    if isinstance(expr, cst.Lambda):
        params = {p.name.value for p in expr.params.params}
        for call in m.findall(expr.body, m.Call()):
            for arg in call.args:  # type: ignore[attr-defined]
                value = arg.value
                if isinstance(value, cst.Name) and value.value not in params:
                    if _loader_like(value.value, module) and scope[value.value]:
                        return value.value, f"`{eval_func}` evaluates on"
        return None
    if not isinstance(expr, cst.Name):
        return None
    function = next(
        (
            f
            for f in m.findall(module, m.FunctionDef(name=m.Name(expr.value)))
            if isinstance(f, cst.FunctionDef)
        ),
        None,
    )
    if function is None:
        return None
    own = _bound_in(function)
    for loop in m.findall(function.body, m.For()):
        name = _iterated_name(loop.iter)  # type: ignore[attr-defined]
        if name is not None and name not in own and scope[name] and _loader_like(name, module):
            return name, f"`{eval_func}` iterates over"
    return None


def _iterated_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Call) and code_of(node.func) in _WRAPPERS and node.args:
        return _iterated_name(node.args[0].value)
    return None


def _bound_in(function: cst.FunctionDef) -> set[str]:
    """Parameters and names the function assigns (not the loaders it reads from outside)."""
    names = {p.name.value for p in function.params.params}
    names |= {p.name.value for p in function.params.kwonly_params}
    for target in m.findall(function.body, m.AssignTarget(target=m.Name())):
        names.add(target.target.value)  # type: ignore[attr-defined]
    return names


def _loader_like(name: str, module: cst.Module) -> bool:
    """A DataLoader by its name, or by the call that builds it (`dl = DataLoader(...)`)."""
    lowered = name.lower()
    if "loader" in lowered or lowered.endswith("_dl"):
        return True
    built = rf"^\s*{re.escape(name)}\s*=\s*[\w.]*DataLoader\("
    return re.search(built, module.code, re.M) is not None
