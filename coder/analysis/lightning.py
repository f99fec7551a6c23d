"""PyTorch Lightning use: a `Trainer.fit` call, or a `LightningCLI` that runs `fit` itself.

Lightning runs the training loop (there is no `.backward()` in the user's code),
so training-time compression reaches it through a Lightning `Callback`. Found:

* `trainer.fit(model, ...)` where `trainer` is built by Lightning's `Trainer`
  (`pl.Trainer(...)`, `L.Trainer(...)`, `Trainer.from_argparse_args(args)`), or is
  `cli.trainer` of a `LightningCLI(..., run=False)`;
* `LightningCLI(Model, ...)` without `run=False`: it parses the command line and
  runs the subcommand (`fit`) inside the constructor, building the module itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .index import Index, Scope

LIGHTNING_PACKAGES = ("lightning", "pytorch_lightning")


@dataclass
class LightningFit:
    call: cst.Call  # trainer.fit(...)
    statement: cst.BaseStatement
    scope: Scope
    trainer: str  # the expression the fit is called on ("trainer", "cli.trainer")
    model: cst.BaseExpression | None  # the module given to fit


@dataclass
class LightningCLIRun:
    call: cst.Call  # LightningCLI(...), which runs fit itself
    statement: cst.BaseStatement
    scope: Scope
    trainer_defaults: cst.Arg | None  # an existing trainer_defaults= argument


@dataclass
class LightningUse:
    fits: list[LightningFit]
    cli_runs: list[LightningCLIRun]
    evaluations: list[cst.Call]  # trainer.validate / test / predict after training

    @property
    def first_line_node(self) -> cst.CSTNode:
        return (self.fits or self.cli_runs)[0].call  # type: ignore[return-value]


def _lightning_name(index: Index, expr: cst.BaseExpression) -> str | None:
    """The qualified name when `expr` names something of Lightning's packages."""
    name = index.qualified(expr)
    return name if name.split(".")[0] in LIGHTNING_PACKAGES else None


def _is_cli(index: Index, call: cst.CSTNode) -> bool:
    if not isinstance(call, cst.Call):
        return False
    name = _lightning_name(index, call.func)
    return name is not None and name.split(".")[-1] == "LightningCLI"


def is_trainer_build(index: Index, leaf: cst.CSTNode) -> bool:
    if not isinstance(leaf, cst.Call):
        return False
    name = _lightning_name(index, leaf.func) or ""
    parts = name.split(".")
    return parts[-1] == "Trainer" or parts[-2:] == ["Trainer", "from_argparse_args"]


def _is_lightning_trainer(index: Index, expr: cst.BaseExpression, scope: Scope) -> bool:
    if isinstance(expr, cst.Attribute) and expr.attr.value == "trainer":
        if any(_is_cli(index, leaf) for leaf, _ in index.values_of(expr.value, scope)):
            return True
    return any(is_trainer_build(index, leaf) for leaf, _ in index.values_of(expr, scope))


def built_by_cli(index: Index, fit: LightningFit) -> bool:
    """`cli.trainer.fit(cli.model)`: the CLI built the module from its class."""
    func = fit.call.func
    assert isinstance(func, cst.Attribute)
    trainer = func.value
    return (
        isinstance(trainer, cst.Attribute)
        and trainer.attr.value == "trainer"
        and any(_is_cli(index, leaf) for leaf, _ in index.values_of(trainer.value, fit.scope))
        and isinstance(fit.model, cst.Attribute)
        and index.source.code(fit.model.value) == index.source.code(trainer.value)
    )


def _runs_itself(call: cst.Call) -> bool:
    """`LightningCLI(..., run=False)` only builds; otherwise it runs the subcommand."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "run":
            return not (isinstance(arg.value, cst.Name) and arg.value.value == "False")
    return True


def find_lightning(index: Index) -> LightningUse | None:
    src = index.source
    fits: list[LightningFit] = []
    cli_runs: list[LightningCLIRun] = []
    evaluations: list[cst.Call] = []
    for call in index.calls:
        func = call.func
        if _is_cli(index, call) and _runs_itself(call):
            defaults = next(
                (a for a in call.args if a.keyword and a.keyword.value == "trainer_defaults"), None
            )
            cli_runs.append(
                LightningCLIRun(call, src.statement_of(call), index.scope_of(call), defaults)
            )
            continue
        if not isinstance(func, cst.Attribute):
            continue
        method = func.attr.value
        if method not in ("fit", "validate", "test", "predict"):
            continue
        scope = index.scope_of(call)
        if not _is_lightning_trainer(index, func.value, scope):
            continue
        if method != "fit":
            evaluations.append(call)
            continue
        model = next((a.value for a in call.args if a.keyword and a.keyword.value == "model"), None)
        if model is None and call.args and call.args[0].keyword is None and not call.args[0].star:
            model = call.args[0].value
        fits.append(LightningFit(call, src.statement_of(call), scope, src.code(func.value), model))
    if not fits and not cli_runs:
        return None
    fits.sort(key=lambda f: src.line(f.call))
    return LightningUse(fits, cli_runs, evaluations)
