"""What the loop analysis finds: the training loop and the call sites climbed to reach it."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .expressions import Loop
from .index import Function, Scope
from .returned_closures import FactoryClosure


@dataclass
class Hop:
    """`function` is reached through `call` (which lives in the caller's scope)."""

    function: Function
    call: cst.Call
    # `optimizer.step(closure)` / `optimizer.step(partial(self.step_fn, ...))`: the optimizer
    # step that runs `function` as its closure (`call` is then the `partial(...)` that binds
    # its arguments, or the step call itself for a bare function)
    closure_of: cst.Call | None = None
    # other calls of `function` in the same loop that its flag arguments keep off the
    # training step (`run_epoch(..., train=False)`): they run the step loop's hooks too
    companions: list[cst.Call] = field(default_factory=list)
    # a closure a method returns, kept in `self.<attr>` and called through it: it reads
    # the manager as `self.compression_manager` (returned_closures.py)
    returned_closure: bool = False
    # the statement that picks `function` on the caller's path (`step_fn = self.train_step_fn`)
    via: cst.CSTNode | None = None
    # a closure a factory function returns (`train_step = make_train_step(model, ...)`):
    # it reads the factory's parameters, so the manager is one more of them
    factory: FactoryClosure | None = None


@dataclass
class TrainingLoop:
    backward: cst.BaseStatement
    backward_scope: Scope
    loss_name: str
    loss_statement: cst.BaseStatement | None
    optimizer_step: cst.BaseStatement
    optimizer: str
    # the optimizer steps of the other branches of an `if` that chooses the step
    other_steps: list[cst.BaseStatement]
    model_call: cst.Call | None
    model_output: str | None
    model_inputs: str | None
    step_loop: Loop
    step_scope: Scope
    step_index: str | None
    epoch_loop: Loop | None
    epoch_var: str | None
    entry_loop: Loop
    entry_scope: Scope
    hops: list[Hop]  # from the backward scope up to the entry scope
    model_in_entry: str
    model_origin: str | None
    model_origin_line: int | None
    total_steps: str | None
    # the epoch loop's iteration count, valid where the entry loop is (None: unknown)
    epochs: str | None = None
    # N of `if (i + 1) % N == 0: optimizer.step()`, as written in the step's scope
    accumulation: str | None = None
    notes: list[str] = field(default_factory=list)
    # the same step reached by another backward call (AMP or not): its loss and steps
    alternatives: list[TrainingLoop] = field(default_factory=list)
    # a frozen model the script already runs next to the trained one (teacher-student)
    teacher_in_entry: str | None = None
    teacher_output: str | None = None  # its output, in the backward scope
    # `module_list[0]`: the loop takes the model out of a container the caller fills
    model_item: str | None = None
    # why the script's own frozen model is not the distillation teacher (its inputs differ)
    teacher_unpaired: str | None = None
    # the frozen models the step runs (teachers, EMA targets), as the entry scope names them
    frozen_in_entry: list[str] = field(default_factory=list)
    # `loss = self._loss_step(batch)`: the function that calls the model (for messages)
    model_called_in: str | None = None
    # timm's `loss_scaler(loss, optimizer, ...)` runs the backward and the optimizer step:
    # the optimizer-step hooks ride on the optimizer itself (optimizer_step_hooks)
    step_in_scaler: bool = False
    # the optimizer step runs the backward's function as its closure: the optimizer-step
    # hooks go after the backward (inside the closure) and after the step call
    step_runs_closure: bool = False
    # `[step(batch, True) for batch in loader]`: the step loop is a comprehension
    step_comprehension: cst.CSTNode | None = None
