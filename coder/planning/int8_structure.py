"""A float instance of the model's class that loads the state dict the script saved after
the model became int8 (QAT's `on_train_end`, a post-training `fit`): `net = Net();
net.load_state_dict(torch.load(PATH))` in an eval subcommand or after training, or
`fresh = BertForTokenClassification(model.config)` for a transformers class. Its keys are
the int8 modules', which the float instance cannot load. A part of `LoopPlanner` (through
`ManagerPreparation`) and of `PostTrainingPlanner`.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis.index import Scope
from neural_coder.transforms import match as m
from neural_coder.transforms.edits import AddImport, ReplaceExpression

from .base import BasePlanner


class Int8StructureReloads(BasePlanner):
    """Rebuilds such an instance as the int8 structure before the script's own load."""

    def _warn_float_reload(
        self, origin: str | None, origin_line: int | None, scope: Scope, int8_from: int
    ) -> None:
        """`origin` (`Net()`, `transformers.BertForTokenClassification`) built the model at
        `origin_line`; from line `int8_from` of `scope` on (and anywhere else in the file) a
        load into another instance of that class reads the int8 state dict. A same-class
        teacher or a resume loaded before that line is no such load."""
        if origin is None or origin_line is None:
            return
        if origin.endswith("()"):
            cls = origin[:-2]
        elif origin.startswith("transformers."):  # `DistilBertForTokenClassification(config)`
            cls = origin.rsplit(".", 1)[-1]
        else:
            return
        for call in self.index.calls:
            if not m.matches(call.func, m.Attribute(attr=m.Name("load_state_dict"))):
                continue
            if self.index.scope_of(call) is scope and self.src.line(call) < int8_from:
                continue
            receiver = call.func.value  # type: ignore[attr-defined]
            for leaf, _ in self.index.values_of(receiver, self.index.scope_of(call)):
                if not isinstance(leaf, cst.Call) or leaf not in self.src.positions:
                    continue
                built = self.index.qualified(leaf.func).rsplit(".", 1)[-1]
                if built == cls and self.src.line(leaf) != origin_line:
                    if self._load_int8_structure(call, receiver):
                        return
                    self.plan.warnings.append(
                        f"line {self.src.line(call)}: a float {cls}() built at line "
                        f"{self.src.line(leaf)} loads a state dict: once quantized, the script "
                        f"saves the int8 model's, which a float {cls}() cannot load; load it with "
                        f"neural_coder.runtime.load(folder, {cls}()) from a compression "
                        "manager's save(folder), or keep that path on fp32 checkpoints"
                    )
                    return

    def _load_int8_structure(self, call: cst.Call, receiver: cst.BaseExpression) -> bool:
        """`net.load_state_dict(torch.load(PATH))` on a float `Net()` after QAT: the state
        dict (loaded once, into a name) rebuilds `net` as the int8 structure it was saved
        from, or converts a fake-quant checkpoint saved while training to the int8 model
        (`structure_for`, bundled runtime only), then the script's own call loads it.
        False where the call is not a statement of its own on a name or attribute."""
        statement = self.src.statement_of(call)
        if not (
            self.options.target == "runtime"
            and isinstance(statement, cst.SimpleStatementLine)
            and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and statement.body[0].value is call
            and call.args
            and not call.args[0].keyword
            and not call.args[0].star
            and m.matches(receiver, m.Name() | m.Attribute(value=m.Name() | m.Attribute()))
        ):
            return False
        arg = call.args[0].value
        state = self.free_name("loaded_state")
        self.plan.edits.append(ReplaceExpression(arg, state))
        target = self.src.code(receiver)
        lines = [
            f"{state} = {self.src.code(arg)}",
            f"{target}, {state} = structure_for({state}, {target})",
        ]
        if isinstance(receiver, cst.Name):
            self.declare_global(receiver.value, self.index.scope_of(call))
        self.insert(statement, "before", lines, f"the int8 structure of {target}")
        self.plan.edits.append(AddImport(self.modules["package"], "structure_for"))
        return True
