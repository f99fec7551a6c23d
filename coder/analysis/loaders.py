"""The data loaders a statement can use: to calibrate a static quantization, or to
feed a benchmark.

A loader is a `DataLoader(...)` followed through names, parameters, `self.x` set in
any method of the class, tuple unpacking of a helper's returned tuple
(`train_loader, val_loader = get_dataloaders(args)`), re-binding by
`accelerator.prepare` / `fabric.setup_dataloaders`, and the return of a helper of
the project; or the result of a helper outside the project whose name says it
builds loaders (`data.val_dataloader()`, `build_loader(cfg)`). Held-out loaders
(val / eval / test) come first: calibration should see data like the evaluation's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds
from .index import Index, Scope, unwrap_pass_through

# `get_dataloaders`, `train_dataloader`, `build_data_loader`, `make_loaders`, `val_loader`
# (not `default_loader` / `pil_loader`: torchvision's image readers)
_LOADER_NAME = re.compile(
    r"(data_?loaders?|^(get|build|make|create|setup|prepare|init|train|val|valid|validation"
    r"|eval|test|dev|calib)_\w*loaders?)$"
)
_RE_BINDS = ("prepare", "setup_dataloaders")  # accelerate / Fabric hand the loader back
_HELD_OUT = ("val", "eval", "test", "dev", "holdout", "calib")
_NOT_HELD_OUT = ("value", "values", "device", "devices", "evaluator")


def is_loader_value(index: Index, value: cst.BaseExpression, scope: Scope) -> bool:
    """Whether `value`, followed through names and calls, is a data loader."""
    return _any_loader(index, index.values_of(value, scope), 0)


def _any_loader(
    index: Index, leaves: Iterable[tuple[cst.BaseExpression, Scope]], depth: int
) -> bool:
    for leaf, leaf_scope in leaves:
        if kinds.is_dataloader(index, leaf) or _named_loader(index, leaf):
            return True
        rebound = _re_bound(leaf)
        if rebound is not None and depth < 3:
            if _any_loader(index, index.values_of(rebound, leaf_scope), depth + 1):
                return True
    return False


def _named_loader(index: Index, leaf: cst.BaseExpression) -> bool:
    """A call outside the project whose name says it builds loaders."""
    if not isinstance(leaf, cst.Call) or index.resolve_call(leaf) is not None:
        return False
    name = kinds.callee(index, leaf) or ""
    return bool(_LOADER_NAME.search(name.rsplit(".", 1)[-1].lower()))


def _re_bound(leaf: cst.BaseExpression) -> cst.BaseExpression | None:
    """`accelerator.prepare(loader)` / `fabric.setup_dataloaders(loader)`: the loader."""
    if (
        isinstance(leaf, cst.Call)
        and m.matches(leaf.func, m.Attribute(attr=m.Name()))
        and leaf.func.attr.value in _RE_BINDS  # type: ignore[attr-defined]
        and len(leaf.args) == 1
        and not leaf.args[0].star
        and leaf.args[0].keyword is None
    ):
        return leaf.args[0].value
    return None


def loaders_in(index: Index, scope: Scope, before_line: int) -> list[str]:
    """Loaders assigned in `scope` before `before_line`, in order."""
    names = []
    for target, assignments in index.assignments.items():
        for a in assignments:
            if a.scope is scope and index.source.line(a.statement) < before_line:
                if _any_loader(index, index.values_assigned(a), 0):
                    names.append((index.source.line(a.statement), target))
                elif (key := _first_loader_key(index, a.value, a.scope)) is not None:
                    names.append((index.source.line(a.statement), f"{target}[{key}]"))
    return list(dict.fromkeys(name for _, name in sorted(names)))


def _first_loader_key(index: Index, value: cst.BaseExpression, scope: Scope) -> str | None:
    """For loaders kept in a dict (`{x: DataLoader(...) for x in ["train", "val"]}`, or a
    dict literal of loaders): the first key, as written."""
    if isinstance(value, cst.DictComp) and len(value.for_in.target.children) <= 1:
        items = value.for_in.iter
        if isinstance(items, cst.List | cst.Tuple) and items.elements:
            if is_loader_value(index, value.value, scope):
                return index.source.code(items.elements[0].value)
    if isinstance(value, cst.Dict) and value.elements:
        first = value.elements[0]
        if isinstance(first, cst.DictElement) and is_loader_value(index, first.value, scope):
            return index.source.code(first.key)
    return None


def _class_loaders(index: Index, cls: cst.ClassDef | None, scope: Scope | None) -> list[str]:
    """`self.x` loaders that the methods of `cls` other than `scope` set (`setup()` before
    `train()`)."""
    if cls is None:
        return []
    names = []
    for target in list(index.assignments):
        if not target.startswith("self.") or target.count(".") != 1:
            continue
        for a in index.class_assignments(target, cls):
            if a.scope is not scope and _any_loader(index, index.values_assigned(a), 0):
                names.append((index.source.line(a.statement), target))
                break
    return [name for _, name in sorted(names)]


def _object_loaders(index: Index, scope: Scope, before_line: int) -> list[str]:
    """`trainer.val_loader` after `trainer = Trainer(args)`: the loaders the object's class
    sets on `self`, seen from the function that built the object."""
    found = []
    for target, assignments in list(index.assignments.items()):
        if "." in target:
            continue
        for a in assignments:
            value = unwrap_pass_through(a.value)
            if a.scope is not scope or index.source.line(a.statement) >= before_line:
                continue
            if m.matches(value, m.Call(func=m.Name())) and value.func.value in index.classes:  # type: ignore[attr-defined]
                cls = index.classes[value.func.value]  # type: ignore[attr-defined]
                found += [target + name[len("self") :] for name in _class_loaders(index, cls, None)]
    return found


def visible_loaders(index: Index, scope: Scope, before_line: int) -> list[str]:
    """Data loaders a statement of `scope` at `before_line` can use: assigned there
    before, received as a parameter that callers bind to a loader, set on `self` by
    another method of the class, or module-level; held-out loaders first."""
    found = loaders_in(index, scope, before_line)
    fn = index.function(scope)
    if fn is not None:
        for param in fn.all_params():
            if param not in found and is_loader_value(index, cst.Name(param), scope):
                found.append(param)
        found += [n for n in _class_loaders(index, index.class_of(scope), scope) if n not in found]
        found += [n for n in _object_loaders(index, scope, before_line) if n not in found]
        found += [n for n in loaders_in(index, index.source.module, 10**9) if n not in found]
    return held_out_first(found)


def held_out_first(names: list[str]) -> list[str]:
    """`val_loader`, `self._eval_dataloader`, `loaders["test"]` before the others."""
    return sorted(names, key=lambda name: not is_held_out(name))


def is_held_out(name: str) -> bool:
    words = [w for w in re.split(r"[^a-z]+", name.lower()) if w]
    return any(w.startswith(_HELD_OUT) and w not in _NOT_HELD_OUT for w in words)


def loader_built_inside(index: Index, function: cst.FunctionDef) -> cst.BaseStatement | None:
    """The first statement of `function` that builds a data loader
    (`data_loader = build_detection_test_loader(cfg, dataset_name)` in an evaluation)."""
    found = [
        a.statement
        for assignments in index.assignments.values()
        for a in assignments
        if a.scope is function and is_loader_value(index, a.value, a.scope)
    ]
    return min(found, key=index.source.line) if found else None
