"""Training repeated in a loop (k-fold cross-validation, one model per seed): the loop
variable that tells the passes apart, so the compressed model each pass saves after
training goes to its own folder instead of overwriting the one before.

Kaggle-style scripts train one model per fold, either in the fold loop itself
(`for fold in range(CFG.n_fold): model = Net(); ...; for epoch in ...`) or in a
function the loop calls (`for fold in range(CFG.n_fold): train_loop(folds, fold)`),
and checkpoint only inside the epoch loop. The save the tool adds after training then
writes `<folder>/fold{fold}`: the loop's variable where the save is, or the parameter
the loop's variable is passed to.
"""

from __future__ import annotations

import ast

import libcst as cst

from .expressions import callee_name
from .index import Index, Scope

_PROGRESS = ("tqdm", "track")


def pass_names(index: Index, node: cst.CSTNode, scope: Scope, depth: int = 2) -> list[str] | None:
    """The names, valid at `node` of `scope`, of the variables of the loops that repeat it
    (outermost first); [] when nothing repeats it; None when a loop repeats it but has
    no variable that tells its passes apart (`while`, `for trn_idx, val_idx in
    kf.split(X)`)."""
    loops = [a for a in _ancestors_within(index, node, scope) if isinstance(a, cst.For | cst.While)]
    if loops:
        names = [_loop_variable(loop) for loop in reversed(loops)]
        return None if any(n is None for n in names) else names  # type: ignore[return-value]
    fn = index.function(scope)
    if fn is None or depth == 0:
        return []
    for call in index.call_sites(fn):
        outer = pass_names(index, call, index.scope_of(call), depth - 1)
        if not outer:
            continue
        params = [
            param
            for param, value in index.bind_arguments(call, fn).items()
            if isinstance(value, cst.Name) and value.value in outer
        ]
        if params:
            return params
    return []


def folder_per_pass(folder: str, names: list[str]) -> str:
    """`folder` (a string literal, an f-string or a path-join call, as written) with a
    sub-folder per pass: `f"neural_coder_output/qat/fold{fold}"`."""
    tail = "/".join(f"{n}{{{n}}}" for n in names)
    if folder[:1] in "'\"":
        value = ast.literal_eval(folder)
        if isinstance(value, str) and '"' not in value and "\\" not in value:
            escaped = value.replace("{", "{{").replace("}", "}}")
            return f'f"{escaped}/{tail}"'
    if folder.startswith('f"') and folder.endswith('"'):
        return f'{folder[:-1]}/{tail}"'
    if folder.endswith(")"):  # os.path.join(out_dir, 'neural_coder_qat')
        return f'{folder[:-1]}, f"{tail}")'
    return f'f"{{{folder}}}/{tail}"'


def _ancestors_within(index: Index, node: cst.CSTNode, scope: Scope) -> list[cst.CSTNode]:
    out = []
    for ancestor in index.source.ancestors(node):
        if ancestor is scope:
            break
        out.append(ancestor)
    return out


def _loop_variable(loop: cst.For | cst.While) -> str | None:
    """`fold` of `for fold in range(n)` or `for fold, (trn, val) in enumerate(splits)`."""
    if isinstance(loop, cst.While):
        return None
    target = loop.target
    if isinstance(target, cst.Name):
        return target.value
    iterable = loop.iter
    if isinstance(iterable, cst.Call) and callee_name(iterable) in _PROGRESS and iterable.args:
        iterable = iterable.args[0].value
    if (
        isinstance(target, cst.Tuple)
        and isinstance(iterable, cst.Call)
        and callee_name(iterable) == "enumerate"
        and isinstance(target.elements[0].value, cst.Name)
    ):
        return target.elements[0].value.value
    return None
