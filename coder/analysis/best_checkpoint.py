"""A checkpoint kept when the metric improves, saved from the training loop:
`save_checkpoint(state, is_best)` (whose body copies the file to `model_best`),
`if acc > best_acc: torch.save(model.state_dict(), path)`. With gradual pruning the
best one may come from an epoch before the target sparsity was reached, and that file
is the one people keep.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from neural_coder.transforms import match as m

from .index import Function, Index, enclosing_loop

# a call that writes a file: its last name says save (torch.save, save_checkpoint,
# accelerator.save_state, model.save_pretrained, trainer.save_model), or shutil copies one;
# an in-memory copy (`best_state = copy.deepcopy(model.state_dict())`) is no file kept
_SAVE_WORD = "save"


@dataclass
class BestCheckpoint:
    call: cst.Call  # the call in the loop's body that leads to the save
    per_step: bool  # saved inside a loop nested in the one scanned (every N steps)


def _last_name(call: cst.Call) -> str:
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value.lower()
    return func.value.lower() if isinstance(func, cst.Name) else ""


def _writes(index: Index, call: cst.Call) -> bool:
    return _SAVE_WORD in _last_name(call) or index.qualified(call.func).startswith("shutil.copy")


def _is_best_flag(expr: cst.BaseExpression) -> bool:
    """`is_best`, `self.is_best`: the argument itself says best (a state dict holding
    `'best_acc1': best_acc1` does not make its save the best one)."""
    if isinstance(expr, cst.Attribute):
        return "best" in expr.attr.value.lower()
    return isinstance(expr, cst.Name) and "best" in expr.value.lower()


def _names_best(node: cst.CSTNode) -> bool:
    """A name or attribute that says `best` (`is_best`, `self.best_acc`), not a string."""
    names = [n.value for n in m.findall(node, m.Name())]
    return any("best" in name.lower() for name in names)


def _in_a_loop(index: Index, node: cst.CSTNode, top: cst.CSTNode) -> bool:
    """A `for` / `while` between `node` and `top` (a loop's or a function's body)."""
    loop = enclosing_loop(index, node)
    return loop is not None and any(a is top for a in index.source.ancestors(loop))


def _guarded_by_best(index: Index, call: cst.Call, top: cst.CSTNode) -> bool:
    """`call` runs under `if <a name that says best>:` below `top`."""
    for ancestor in index.source.ancestors(call):
        if ancestor is top:
            return False
        if isinstance(ancestor, cst.If) and _names_best(ancestor.test):
            return True
    return False


def _saves_best(index: Index, body: cst.CSTNode, depth: int) -> tuple[cst.Call, bool] | None:
    """The first call in `body` (a loop's or a function's body) that keeps the best
    checkpoint, directly or through the file's functions it calls (`depth` levels
    deep), and whether it runs in a loop nested in `body`."""
    for call in m.findall(body, m.Call()):
        nested = _in_a_loop(index, call, body)
        if _writes(index, call) and (
            any(_is_best_flag(a.value) for a in call.args) or _guarded_by_best(index, call, body)
        ):
            return call, nested
        fn = _called_function(index, call) if depth > 0 else None
        found = None if fn is None else _saves_best(index, fn.node.body, depth - 1)
        if found is not None:
            return call, nested or found[1]
    return None


def _called_function(index: Index, call: cst.Call) -> Function | None:
    """The function of the file `call` runs: a function or method, or the `__call__` of
    an object of the file's class (`early_stopping(val_loss, model)` of a Kaggle-style
    `EarlyStopping` that saves the checkpoint when the loss improves)."""
    fn = index.resolve_call(call)
    if fn is not None or not isinstance(call.func, cst.Name | cst.Attribute):
        return fn
    cls = index.instance_class(call.func, index.scope_of(call))
    return None if cls is None else index.method_of(cls, "__call__")


def best_checkpoint_save(index: Index, loop: cst.For | cst.While) -> BestCheckpoint | None:
    """The first call in `loop`'s body that saves a checkpoint when the metric improves
    (directly, or through functions of the file it calls, two levels deep)."""
    found = _saves_best(index, loop.body, 2)
    return None if found is None else BestCheckpoint(*found)
