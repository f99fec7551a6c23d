"""Hooks inside the training step: the optimizer hooks inside a loss scaler's call and
the distillation hook after the loss (with the model's inputs and outputs it reads).
A part of `LoopPlanner` (loop.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.backward_calls import is_scaler_step_call, reduced_loss
from neural_coder.analysis.expressions import free_names
from neural_coder.analysis.index import PASS_THROUGH_METHODS
from neural_coder.analysis.last_epoch import guarded
from neural_coder.analysis.train_only import TrainOnly
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m
from neural_coder.transforms.edits import AddImport, ReplaceExpression
from neural_coder.transforms.tree import iter_nodes

from .base import BasePlanner
from .student_output import (
    accessed_call,
    changes_of,
    check_followed,
    reads_as_losses,
    refuse_changed,
    refuse_losses_output,
)

HOOKS_INTEGRATION = "neural_coder.runtime.integrations.hooks"
# tensor methods that give the same values each time: an input built with them alone is
# evaluated again for the teacher as it is
CONVERSION_METHODS = PASS_THROUGH_METHODS | {
    "view",
    "reshape",
    "unsqueeze",
    "squeeze",
    "permute",
    "transpose",
    "contiguous",
    "flatten",
    "long",
    "int",
    "type",
    "detach",
    "clone",
    "to_dense",
    "flip",
    "t",
}
# an expression evaluated only on some paths, or later, or many times
CONDITIONAL_EXPRESSIONS = (
    cst.IfExp,
    cst.BooleanOperation,
    cst.Lambda,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)


class StepHooks(BasePlanner):
    """A part of `LoopPlanner` (loop.py): hooks inside the step."""

    def _scaler_call_in(self, step: cst.BaseStatement) -> cst.Call | None:
        """The `loss_scaler(loss, optimizer, ...)` call that `step` (a statement) is."""
        if not isinstance(step, cst.SimpleStatementLine):
            return None
        for call in m.findall(step, m.Call()):
            assert isinstance(call, cst.Call)
            if is_scaler_step_call(self.index, call):
                return call
        return None

    def _hooks_inside_the_scaler(self, step: cst.BaseStatement, optimizer: str, cm: str) -> None:
        """`loss_scaler(loss, optimizer, ...)` backs up and steps in one call: the optimizer
        hooks go onto the optimizer for that call, and come off after it."""
        handles = self.free_name("step_hooks")
        self.insert(
            step,
            "before",
            [f"{handles} = optimizer_step_hooks({optimizer}, {cm})"],
            "on_before/after_optimizer_step inside the scaler's optimizer.step()",
        )
        self.insert(step, "after", [f"{handles}.remove()"], "the step hooks removed")
        self.plan.edits.append(AddImport(HOOKS_INTEGRATION, "optimizer_step_hooks"))

    @staticmethod
    def _only_when(lines: list[str], test: str | None) -> list[str]:
        """`lines` under `if <test>:` (the step's training condition), or as they are."""
        return lines if test is None else guarded(lines, test)

    def _distillation_loss(self, loop: TrainingLoop, cm: str, trains: TrainOnly | None) -> None:
        output = loop.model_output
        if loop.loss_statement is not None and output is None and loop.model_call is not None:
            output = self._hoist_model_call(loop.loss_statement, loop.model_call)
        loss = loop.loss_name
        # the hook goes after the loss statement, or before the backward of a loss it names
        anchor, where = loop.loss_statement, "after"
        value = self._loss_value(loop.loss_statement)
        if loop.loss_statement is None and loop.model_call is not None:
            loss, output, value = self._name_the_loss(loop)
            anchor, where = loop.backward, "before"
        if anchor is None or output is None or loop.model_inputs is None:
            where = (
                f"the model is called inside {loop.model_called_in}, which the loss is computed from"
                if loop.model_called_in
                else "the model call is not assigned to a name before the loss"
            )
            raise AnalysisError(
                f"distillation needs the model's inputs and outputs next to the loss, but {where}",
                path=self.src.path,
                line=self.src.line(loop.loss_statement or loop.backward),
                hint="assign the model's output first (output = model(x); loss = criterion(output, y))",
            )
        if output == loop.loss_name:
            self._refuse_an_unnamed_loss(loop)
        if loop.model_call is not None and reads_as_losses(self.src, output, anchor):
            refuse_losses_output(self.src, output, loop.model_call, anchor)
        if loop.model_output is not None and loop.model_call is not None:
            output = self._unchanged_output(loop.model_output, loop.model_call, anchor)
        inputs = self._inputs(loop)
        hook = f"{cm}.callbacks.on_after_compute_loss({inputs}, {output}, "
        # the script's own teacher output, so the teacher does not run twice
        given = (
            f", teacher_output={loop.teacher_output}"
            if self.script_teacher and loop.teacher_output is not None
            else ""
        )
        scale = self._accumulation_scale(value, loop.accumulation)
        if scale is None:
            code = f"{loss} = {hook}{loss}{given})"
        else:  # the teacher's term is scaled down for accumulation like the student's
            code = f"{loss} = {hook}{loss} * {scale}{given}) / {scale}"
        if trains is not None and not any(a is trains.branch for a in self.src.ancestors(anchor)):
            # the loss of an evaluation batch too: the teacher runs on training batches only
            self.insert(anchor, where, guarded([code], trains.test), "on_after_compute_loss")
            return
        self.insert(anchor, where, [code], "on_after_compute_loss")

    def _refuse_an_unnamed_loss(self, loop: TrainingLoop) -> None:
        """The name the backward reads is the model call's whole output: either the model
        returns the loss itself (`loss = model(x, y)`), or the backward computes the loss
        from the outputs in its own expression (`(outputs.loss * w).sum().backward()`)."""
        backpropagated = self._backpropagated(loop.backward)
        if (
            backpropagated is not None
            and self.src.code(reduced_loss(backpropagated)) != loop.loss_name
        ):
            raise AnalysisError(
                f".backward() is called on {self.src.code(backpropagated)}, computed from the "
                f"model's outputs ({loop.loss_name}) in the backward's own expression: "
                "distillation replaces a loss it can name, and this one has none",
                path=self.src.path,
                line=self.src.line(loop.backward),
                hint=f"name the loss first (loss = ...; loss.backward()), computed from "
                f"{loop.loss_name}",
            )
        raise AnalysisError(
            f"the model call returns the loss itself ({self.src.code(loop.loss_statement)}): "  # type: ignore[arg-type]
            "distillation needs the model's outputs to compare with the teacher's",
            path=self.src.path,
            line=self.src.line(loop.loss_statement),  # type: ignore[arg-type]
            hint="have the model return its logits and compute the loss from them",
        )

    @staticmethod
    def _backpropagated(statement: cst.BaseStatement) -> cst.BaseExpression | None:
        """`expression` of the `expression.backward()` in `statement`."""
        for call in m.findall(statement, m.Call(func=m.Attribute(attr=m.Name("backward")))):
            return call.func.value  # type: ignore[attr-defined]
        return None

    def _inputs(self, loop: TrainingLoop) -> str:
        """The model's inputs as the hook reads them. Inputs the model call re-binds
        (`output, hidden = model(data, hidden)`) are kept in a name before the call, so
        the teacher gets what the student got."""
        inputs = loop.model_inputs or ""
        if inputs.startswith("ModelInputs("):
            if self.options.target == "inc":
                raise AnalysisError(
                    f"the model takes positional and keyword arguments together "
                    f"({self.src.code(loop.model_call)}): INC's teacher call takes a tuple or a "  # type: ignore[arg-type]
                    "dict, not both",
                    path=self.src.path,
                    line=self.src.line(loop.model_call),  # type: ignore[arg-type]
                    hint="pass the model's inputs all by keyword, or use --target runtime",
                )
            self.plan.edits.append(AddImport(self.modules["training"], "ModelInputs"))
        call = loop.model_call
        statement = self.src.statement_of(call) if call is not None else None
        drawn = self._drawn_input(call, inputs)
        if drawn is not None and self._runs_once(call, statement):
            # `model(augment(x))`, `model(x + noise * torch.randn_like(x))`: the hook would
            # draw another view for the teacher; the student's is named and handed to both
            name = self.free_name("model_inputs")
            self.insert(
                statement,  # type: ignore[arg-type]
                "before",
                [f"{name} = {inputs}"],
                "the model's input, drawn once for the student and the teacher",
            )
            self.plan.edits.append(ReplaceExpression(drawn, name))
            return name
        rebound = {
            t.value
            for small in getattr(statement, "body", ())
            if isinstance(small, cst.Assign)
            for target in small.targets
            for t in m.findall(target.target, m.Name())  # type: ignore[union-attr]
        }
        if statement is None or not rebound & free_names(cst.parse_expression(inputs)):
            return inputs
        name = self.free_name("model_inputs")
        self.insert(
            statement, "before", [f"{name} = {inputs}"], "the model's inputs, kept for the teacher"
        )
        return name

    def _drawn_input(self, call: cst.Call | None, inputs: str) -> cst.BaseExpression | None:
        """The model's one input when it is an expression that calls something other than
        a tensor's conversion methods (`augment(x)`, `torch.randn_like(x)`, a
        transform): evaluated again in the hook, it could be another random draw."""
        if call is None or len(call.args) != 1 or call.args[0].keyword or call.args[0].star:
            return None
        value = call.args[0].value
        if self.src.code(value) != inputs:
            return None
        for inner in m.findall(value, m.Call()):
            func = inner.func  # type: ignore[attr-defined]
            method = func.attr.value if isinstance(func, cst.Attribute) else None
            if method not in CONVERSION_METHODS:
                return value
        return None

    @staticmethod
    def _loss_value(loss_statement: cst.BaseStatement | None) -> cst.BaseExpression | None:
        """`criterion(out, y) / N` of `loss = criterion(out, y) / N`."""
        if not isinstance(loss_statement, cst.SimpleStatementLine):
            return None
        small = loss_statement.body[0]
        return small.value if isinstance(small, cst.Assign) else None

    def _accumulation_scale(
        self, value: cst.BaseExpression | None, accumulation: str | None
    ) -> str | None:
        """`N` when the loss's value divides by the accumulation factor N
        (`loss = criterion(out, y) / N`). A later `loss /= N` needs nothing: the hook
        goes before it."""
        if accumulation is None or not (
            isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Divide)
        ):
            return None
        divisor = value.right
        text = self.src.code(divisor)
        if text != accumulation:
            return None
        return text if isinstance(divisor, cst.Name | cst.Attribute | cst.Integer) else f"({text})"

    def _hoist_model_call(self, loss_statement: cst.BaseStatement, call: cst.Call) -> str | None:
        """`loss = model(**batch).loss` or `loss = criterion(model(x), y)`: the model call
        moves into a statement of its own before the loss (`outputs = model(**batch)`),
        so the distillation hook can read the outputs. None where moving it could change
        what runs: the call is not in the loss statement itself, or runs conditionally,
        or more than once."""
        statement = self.src.statement_of(call)
        if statement is not loss_statement:
            # `model_pred = unet(x, t, return_dict=False)[0]` or `logits = model(**b).logits`
            # before the loss: the whole output is named, the prediction read from it
            if not self._reads_model_call(statement, call, loss_statement):
                return None
        if not self._runs_once(call, statement):
            return None
        name = self._name_the_model_call(call, statement)
        self.plan.edits.append(ReplaceExpression(call, name))
        return name

    def _name_the_model_call(self, call: cst.Call, statement: cst.BaseStatement) -> str:
        """`outputs = model(...)` in a statement of its own before `statement` (a fresh
        name); the caller makes `statement` read that name instead of the call."""
        self._check_read(call)
        name = self.free_name("outputs")
        self.insert(
            statement,
            "before",
            [f"{name} = {self.src.code(call)}"],
            f"the model call, assigned to {name}",
        )
        return name

    def _runs_once(self, call: cst.CSTNode, statement: cst.CSTNode | None) -> bool:
        """`call` (the model's, or the loss's) runs once, unconditionally, whenever the
        simple statement `statement` runs: naming it in a statement before runs the same."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        if isinstance(call, cst.Call):
            callee = self.src.code(call.func)
            calls = [c for c in m.findall(statement, m.Call()) if self.src.code(c.func) == callee]
            if len(calls) != 1:
                return False
        for node in self.src.ancestors(call):
            if node is statement:
                return True
            if isinstance(node, CONDITIONAL_EXPRESSIONS):
                return False
        return False

    def _check_read(self, call: cst.Call) -> None:
        read = self.src.parent(call)
        method = isinstance(read, cst.Attribute) and isinstance(self.src.parent(read), cst.Call)
        if isinstance(read, cst.Subscript | cst.Attribute) and read.value is call and not method:
            check_followed(self.src, call, read)  # `.sum()` is the output's method, not a read

    def _name_the_loss(self, loop: TrainingLoop) -> tuple[str, str | None, cst.BaseExpression]:
        """`criterion(model(x), y).backward()`: the loss gets a name of its own in a
        statement before the backward (`loss = criterion(outputs, y)`, after
        `outputs = model(x)` where the model call is inside it), which the backward then
        reads. The name, the model's output, and the loss's value."""
        statement, call = loop.backward, loop.model_call
        assert call is not None
        found = [
            node
            for node in iter_nodes(statement)
            if isinstance(node, cst.BaseExpression) and self.src.code(node) == loop.loss_name
        ]
        expression = found[0] if found else None
        if expression is None or not self._runs_once(expression, statement):
            raise AnalysisError(
                f"distillation adds the teacher's term to the loss, but .backward() is called "
                f"on an expression ({loop.loss_name}) that runs only on some paths or "
                "several times, not on a named loss",
                path=self.src.path,
                line=self.src.line(statement),
                hint="name the model's output and the loss first (output = model(x); "
                "loss = criterion(output, y); loss.backward())",
            )
        assert isinstance(expression, cst.BaseExpression)
        value = expression.with_changes(lpar=[], rpar=[])
        output = loop.model_output
        if output is None and any(a is expression for a in self.src.ancestors(call)):
            if call is expression or not self._runs_once(call, statement):
                return loop.loss_name, None, value  # refused by the caller, with the reason
            output = self._name_the_model_call(call, statement)
            value = value.deep_replace(call, cst.Name(output))  # type: ignore[assignment]
        loss = self.free_name("loss")
        self.insert(
            statement,
            "before",
            [f"{loss} = {self.src.code(value)}"],
            f"the loss .backward() is called on, assigned to {loss}",
        )
        self.plan.edits.append(ReplaceExpression(expression, loss))
        return loss, output, value

    def _unchanged_output(
        self, output: str, call: cst.Call, loss_statement: cst.BaseStatement
    ) -> str:
        """`output` as the model returned it at the hook: kept in a name of its own right
        after the call where the script binds `output` anew before the loss."""
        rebound, changed = changes_of(self.src, output, call, loss_statement)
        if changed:
            refuse_changed(self.src, output, call, changed[0])
        if not rebound:
            return output
        name = self.free_name("student_output")
        self.insert(
            self.src.statement_of(call),
            "after",
            [f"{name} = {output}"],
            f"the model's output before line {self.src.line(rebound[0])} binds {output} anew",
        )
        return name

    def _reads_model_call(
        self, statement: cst.CSTNode | None, call: cst.Call, loss_statement: cst.BaseStatement
    ) -> bool:
        """`name = call[0]` (reads of the call only) in the loops and function of the loss:
        naming the call's output there runs nothing more, nothing less."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        small = statement.body[0]
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            return False
        found = accessed_call(small.value)
        if found is None or found[0] is not call:
            return False
        around_loss = set(map(id, self.src.ancestors(loss_statement)))
        return all(
            id(node) in around_loss
            for node in self.src.ancestors(statement)
            if isinstance(node, cst.For | cst.While | cst.FunctionDef | cst.If | cst.Try)
        )
