"""A float instance of the model's class, built after training, that loads the state dict
the script saved (`net = Net(); net.load_state_dict(torch.load(PATH))`): after QAT or a
post-training quantization that state dict is the int8 model's, so the instance is
rebuilt as the int8 structure first (`structure_for`), or the script is warned. A part
of `LoopPlanner` (loop.py) and of `PostTrainingPlanner` (post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop
from neural_coder.analysis.index import unwrap_pass_through
from neural_coder.transforms import match as m
from neural_coder.transforms.edits import AddImport, ReplaceExpression

from .base import BasePlanner


class FloatInstanceReloads(BasePlanner):
    """Int8 state dicts loaded into a float instance of the model's class."""

    def _warn_float_reload(self, loop: TrainingLoop, after: str = "QAT") -> None:
        """`style_model = TransformerNet(); style_model.load_state_dict(torch.load(path))`
        elsewhere in the file (an eval subcommand, a test function): after QAT (or a
        post-training quantization, `after`) the saved state dict is the int8 model's,
        which a float instance of the class cannot load."""
        origin, origin_line = loop.model_origin, loop.model_origin_line
        if origin is None or origin_line is None:
            return
        # `Net()` of the project, or a library's class or factory (`torch.nn.Sequential`,
        # `torchvision.models.resnet18`); not a pretrained load (`from_pretrained`)
        cls = origin[:-2] if origin.endswith("()") else origin.rsplit(".", 1)[-1]
        if not origin.endswith("()") and (" " in origin or cls.startswith(("from_", "load"))):
            return
        end = self.src.positions[loop.entry_loop].end.line  # type: ignore[attr-defined]
        for call in self.index.calls:
            if not m.matches(call.func, m.Attribute(attr=m.Name("load_state_dict"))):
                continue
            if self.index.scope_of(call) is loop.entry_scope and self.src.line(call) < end:
                continue  # before training: a teacher of the same class, a resume
            receiver = call.func.value  # type: ignore[attr-defined]
            for leaf, _ in self.index.values_of(receiver, self.index.scope_of(call)):
                if not isinstance(leaf, cst.Call) or leaf not in self.src.positions:
                    continue
                built = self.index.qualified(leaf.func).rsplit(".", 1)[-1]
                if built == cls and (
                    self.src.line(leaf) != origin_line
                    or self._built_by_another_call(receiver, call, loop.model_in_entry)
                ):
                    if self._load_int8_structure(call, receiver):
                        return
                    self.plan.warnings.append(
                        f"line {self.src.line(call)}: a float {cls}() built at line "
                        f"{self.src.line(leaf)} loads a state dict: after {after} the script saves "
                        f"the int8 model's, which a float {cls}() cannot load; load it with "
                        f"neural_coder.runtime.load(folder, {cls}()) from a compression "
                        "manager's save(folder), or keep that path on fp32 checkpoints"
                    )
                    return

    def _built_by_another_call(
        self, receiver: cst.BaseExpression, load: cst.Call, model: str
    ) -> bool:
        """`deployed = build_model(cfg)`: the factory that built the trained model
        (`self.model = build_model(cfg)`), called again for a new instance."""
        if not isinstance(receiver, cst.Name):
            return False
        trained = {id(a.statement) for a in self.index.assignments.get(model, [])}
        own = self.index.assignments_in(receiver.value, self.index.scope_of(load))
        return bool(own) and all(
            id(a.statement) not in trained and self._factory_call(a.value) for a in own
        )

    def _factory_call(self, value: cst.BaseExpression) -> bool:
        """A call of a function of the project that returns the model it builds; not a
        constructor (`model = Net()` in the setup helper that builds the trained model is
        that build itself)."""
        value = unwrap_pass_through(value)
        if not isinstance(value, cst.Call):
            return False
        fn = self.index.resolve_call(value)
        return fn is not None and fn.name != "__init__"

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
