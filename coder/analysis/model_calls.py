"""The model call of a training step: which call is the model, what it is given, where it comes from."""

from __future__ import annotations

import re

import libcst as cst

from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from . import kinds
from .expressions import is_dotted_name, names_in
from .index import Index, Scope
from .loop_types import Hop
from .roles import all_optimized_leaves, split_roles, trains_no_model, updated_models
from .source import Source
from .wraps import values_through_wraps

MARKER_MODEL = "neural-coder: model"
TRAINS_NO_MODEL = "the loop trains auxiliary modules only"
# the element of a returned tuple that holds the prediction (`feat_s, logit_s = ...`)
OUTPUT_NAME = re.compile(r"logit|out|pred|score")


class ModelCalls:
    """A part of `LoopAnalysis` (training.py): it reads `self.index` and `self.source`."""

    index: Index
    source: Source
    # set when the loss is computed from `self(...)` / `self.forward(...)` of a model class
    self_called: bool

    def _model_call(
        self,
        scope: Scope,
        loss_statement: cst.BaseStatement | None,
        backward: cst.BaseStatement,
        optimizer: str,
    ) -> tuple[cst.Call | None, str | None, str | None, str | None]:
        """The call of the trained model whose output the loss is computed from: the
        call, the name its output is assigned to, the model as written, and the method
        when the call is one of the model's own methods (`module.training_step(...)`).
        Of several models, the one the optimizer updates; a frozen one's calls are
        left in `self.teacher_calls`."""
        src = self.source
        limit = src.line(backward)
        related: list[cst.CSTNode] = []
        if loss_statement is not None:
            # the statements the loss is computed from, followed back through names
            # (`logits = model(x)`; `losses = {"ce": ce(logits, y)}`; `loss = sum(losses.values())`)
            related.append(loss_statement)
            seen: set[str] = set()
            pending = [loss_statement]
            while pending and len(seen) < 64:
                statement = pending.pop(0)  # nearest first: the cap must not cut them off
                # where a callee comes from (`model = load_model(args)`) is not what the loss is computed from
                callees = {src.code(c.func) for c in m.findall(statement, m.Call())}  # type: ignore[union-attr]
                # in the order written: with the cap on `seen`, a set's order made the outcome
                # change from one run to the next (string hashes are salted per process)
                names = dict.fromkeys(n.value for n in names_in(statement))
                for name in [n for n in names if n not in callees and n not in seen]:
                    seen.add(name)
                    for a in self.index.assignments_in(name, scope):
                        if src.line(a.statement) <= limit and a.statement not in related:
                            related.append(a.statement)
                            pending.append(a.statement)
        calls = list({id(c): c for node in related for c in m.findall(node, m.Call())}.values())
        if not calls:  # the loss is computed elsewhere; any model call in the step function
            calls = [
                c
                for c in self.index.calls
                if self.index.scope_of(c) is scope and src.line(c) <= limit
            ]
        if any(m.matches(c.func, m.Name("self")) for c in calls) and self._is_module_class(
            self.index.class_of(scope)
        ):
            self.self_called = True  # `out = self(x)` in a method of the model's class
        methods = [c for c in calls if self._model_method(c, scope) is not None]
        models = [
            c
            for c in calls
            if isinstance(c, cst.Call) and c not in methods and self._is_model_callee(c.func, scope)
        ]
        # `model = Model(cfg).to(device)`, reached through `amp = check_amp(model)`, builds
        # the model that `model(imgs)` calls: it is not the call of a second model
        called = {src.code(c.func) for c in models}
        models = [c for c in models if not (self._assigned_to(c) & (called - {src.code(c.func)}))]
        # the loss name may also be bound before the loop (a one-off pass before training):
        # the calls in the loop around the backward are the training step's
        around = self.enclosing_loop(backward, scope)
        in_loop = [c for c in models if around is not None and around in set(src.ancestors(c))]
        if around is not None and models and not in_loop:
            # no model call in the loop: the model is called in a function of the file
            # (`ea = encode(model, anchors)`), and the calls before the loop that the
            # loss reaches through the argument build it (`model = BertModel(config)`)
            callee = self._model_in_loss_function(
                [c for c in calls if around in set(src.ancestors(c))]
            )
            if callee is not None:
                return None, None, callee, None
        models = in_loop or models
        if not models and not methods:
            callee = self._model_in_loss_function(calls)
            if callee is not None:
                return None, None, callee, None
        if not models:  # `loss = module.training_step(batch, i)`: a method of the model
            receivers = {src.code(c.func.value) for c in methods}  # type: ignore[attr-defined]
            if len(receivers) == 1:
                method = methods[0]
                return method, None, receivers.pop(), method.func.attr.value  # type: ignore[attr-defined]
        callees = {src.code(c.func) for c in models}
        self.teacher_calls = []
        if trains_no_model(self.index, models, scope, optimizer):
            raise AnalysisError(
                f"{TRAINS_NO_MODEL}: {optimizer} updates none of the models it calls "
                f"({', '.join(sorted(callees))}, each frozen)",
                path=src.path,
                line=src.line(backward),
            )
        if len(callees) > 1:
            marked = [c for c in models if self._has_marker(c)]
            roles = split_roles(self.index, models, scope, optimizer)
            if len(marked) == 1:
                models, callees = marked, {src.code(marked[0].func)}
            elif roles is not None:
                models, self.teacher_calls = roles.trained, roles.teachers
            else:
                raise AnalysisError(
                    f"the loss depends on several models ({', '.join(sorted(callees))})",
                    path=src.path,
                    line=src.line(models[0]),
                    hint="mark the line that calls the model to compress with '# neural-coder: model'",
                )
        if not models:
            return None, None, None, None
        call = models[0]
        return call, self._output_name(call), src.code(call.func), None

    def _model_in_loss_function(self, calls: list[cst.Call]) -> str | None:
        """`loss = self._loss_step(batch)`: a function of the script computes the loss and
        calls the model; the model as the caller names it (`self._model`), when the
        functions the loss comes from call one model."""
        src = self.source
        found: set[str] = set()
        for call in calls:
            fn = self.index.resolve_call(call)
            if fn is None:
                continue
            if self._is_own_forward(call, fn.node):
                # `self.forward(x)` in a method of the model's class: the loop trains
                # `self`, not the submodules its forward calls (`self.relu`)
                self.self_called = True
                continue
            inner = {
                src.code(c.func)
                for c in self.index.calls
                if self.index.scope_of(c) is fn.node and self._is_model_callee(c.func, fn.node)
            }
            for callee in inner:
                mapped = self.map_up(callee, [Hop(fn, call)])
                if mapped is not None:
                    found.add(mapped)
                    self.model_called_in = f"{fn.key}() (line {src.line(fn.node)})"
        return found.pop() if len(found) == 1 else None

    def _is_own_forward(self, call: cst.Call, callee: cst.FunctionDef) -> bool:
        """`self.forward(...)` / `self.__call__(...)` where `self` is a model: a method of the
        model's own class calls the model itself."""
        if not m.matches(
            call.func, m.Attribute(m.Name("self"), m.Name("forward") | m.Name("__call__"))
        ):
            return False
        return self._is_module_class(self.index.class_of(callee))

    def _is_module_class(self, cls: cst.ClassDef | None) -> bool:
        if cls is None:
            return False
        # `class Layer(nn.Linear)` is a module too, though not a model class of its own
        bases = (self.index.qualified(b.value) for b in cls.bases)
        return kinds.is_model_class(self.index, cls) or any(
            b.startswith("torch.nn.") and b.rsplit(".", 1)[-1][:1].isupper() for b in bases
        )

    def _output_name(self, call: cst.Call) -> str | None:
        """`out` of `out = model(x)` (or of `out, aux = model(x)`; `logit_s` of
        `feat_s, logit_s = model_s(x, is_feat=True)`)."""
        statement = self.source.statement_of(call)
        if isinstance(statement, cst.SimpleStatementLine):
            small = statement.body[0]
            paired = self._paired_target(small, call)
            if paired is not None:
                return paired
            if isinstance(small, cst.Assign) and len(small.targets) == 1 and small.value is call:
                target = small.targets[0].target
                if isinstance(target, cst.Tuple | cst.List) and target.elements:
                    names = [e.value for e in target.elements]
                    # the element named as the model's prediction, else the first
                    # (`logits, aux = model(x)`)
                    target = next(
                        (
                            n
                            for n in names
                            if isinstance(n, cst.Name) and OUTPUT_NAME.search(n.value.lower())
                        ),
                        names[0],
                    )
                if isinstance(target, cst.Name):
                    return target.value
        return None

    @staticmethod
    def _paired_target(small: cst.BaseSmallStatement, call: cst.Call) -> str | None:
        """`emb_a` of `emb_a, emb_p, emb_n = model(a), model(p), model(n)` (a triplet
        network's three calls in one statement): the name bound to `call` itself."""
        if not (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.value, cst.Tuple)
            and isinstance(small.targets[0].target, cst.Tuple | cst.List)
        ):
            return None
        values = [e.value for e in small.value.elements]
        targets = [e.value for e in small.targets[0].target.elements]  # type: ignore[union-attr]
        if len(values) != len(targets) or not any(v is call for v in values):
            return None
        target = targets[next(i for i, v in enumerate(values) if v is call)]
        return target.value if isinstance(target, cst.Name) else None

    def _assigned_to(self, call: cst.Call) -> set[str]:
        """The targets of the assignment whose value holds `call`."""
        statement = self.source.statement_of(call)
        if not isinstance(statement, cst.SimpleStatementLine):
            return set()
        return {
            self.source.code(t.target)
            for small in statement.body
            if isinstance(small, cst.Assign)
            for t in small.targets
        }

    def _model_method(self, call: cst.BaseExpression, scope: Scope) -> str | None:
        """`step` when `call` is `model.step(...)` on a model of the file's own class
        that defines `step` (a training_step in the style of Lightning)."""
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            return None
        receiver, method = call.func.value, call.func.attr.value
        if method in ("forward", "__call__") or not is_dotted_name(receiver):
            return None
        for leaf, _ in self.index.values_of(receiver, scope):
            name = kinds.callee(self.index, leaf)
            cls = self.index.classes.get(name or "")
            if cls is not None and kinds.is_model_class(self.index, cls):
                if any(
                    isinstance(s, cst.FunctionDef) and s.name.value == method for s in cls.body.body
                ):
                    return method
        if method.endswith("_step") and self._annotated_module(receiver, scope):
            return method  # `def fit(self, model: L.LightningModule)`: `model.training_step(...)`
        return None

    def _annotated_module(self, receiver: cst.BaseExpression, scope: Scope) -> bool:
        """`receiver` is a parameter of `scope` annotated as a module (`nn.Module`,
        `L.LightningModule`): its class lives in the caller's script."""
        if not isinstance(receiver, cst.Name) or not isinstance(scope, cst.FunctionDef):
            return False
        p = scope.params
        for param in (*p.posonly_params, *p.params, *p.kwonly_params):
            if param.name.value == receiver.value and param.annotation is not None:
                text = self.source.code(param.annotation.annotation).strip("'\"")
                return text.split(".")[-1] in ("Module", "LightningModule")
        return False

    def _has_marker(self, node: cst.CSTNode) -> bool:
        return MARKER_MODEL in self.source.line_text(node)

    def _is_model_callee(self, func: cst.BaseExpression, scope: Scope) -> bool:
        if not is_dotted_name(func):
            return False
        qualified = self.index.qualified(func)
        if (
            qualified.startswith(("torch.", "F."))
            or qualified.split(".")[-1] in kinds.OPTIMIZER_NAMES
            or kinds.names_a_criterion(self.source.code(func))
        ):
            return False
        for leaf, _ in self.index.values_of(func, scope):
            if kinds.model_kind(self.index, leaf) is not None:
                return True
            if self._has_marker(leaf):
                return True
        if self._optimized is None:
            self._optimized = all_optimized_leaves(self.index)
        if any(id(leaf) in self._optimized for leaf, _ in self.index.values_of(func, scope)):
            return True  # an optimizer updates its parameters (a class from another module)
        return kinds.names_a_model(self.source.code(func))

    def _model_origin(self, callee: str, scope: Scope) -> tuple[str | None, int | None]:
        if not callee:
            return None, None
        # the model inside a wrap (`nn.DataParallel(net)`): what builds `net`
        for leaf, _ in values_through_wraps(self.index, cst.parse_expression(callee), scope):
            kind = kinds.model_kind(self.index, leaf)
            if kind is not None and leaf in self.source.positions:
                return kind, self.source.line(leaf)
        return None, None

    def _inputs_text(self, call: cst.Call) -> str:
        """The model's inputs as one expression the teacher can be called with (INC's
        dispatch: a mapping as keywords, a tuple as positional arguments, else one
        argument); `ModelInputs(...)` (runtime only) for positional and keyword together."""
        src = self.source
        args = call.args

        def arg(a: cst.Arg) -> str:
            return f"{a.star}{src.code(a.value)}"

        if len(args) == 1 and args[0].star == "**":
            return src.code(args[0].value)
        if len(args) == 1 and args[0].star == "*":
            return f"tuple({src.code(args[0].value)})"
        if len(args) == 1 and not args[0].keyword and not args[0].star:
            return src.code(args[0].value)
        keywords = [a for a in args if a.keyword is not None or a.star == "**"]
        if keywords and len(keywords) == len(args):
            return (
                "dict("
                + ", ".join(
                    f"{a.keyword.value}={src.code(a.value)}" if a.keyword else arg(a) for a in args
                )
                + ")"
            )
        if keywords:
            return (
                "ModelInputs("
                + ", ".join(
                    f"{a.keyword.value}={src.code(a.value)}" if a.keyword else arg(a) for a in args
                )
                + ")"
            )
        items = ", ".join(arg(a) for a in args)
        return f"({items},)" if len(args) == 1 else f"({items})"

    def _model_the_optimizer_updates(self, optimizer: str, scope: Scope) -> str | None:
        """The one model whose parameters `optimizer` updates, when that name reaches
        `scope` unchanged (a module-level `policy`, `self.policy`)."""
        owners = updated_models(self.index, optimizer, scope)
        if len(owners) != 1:
            return None
        owner = owners.pop()
        if owner.split(".")[0] != "self" and self.index.assignments_in(owner, scope):
            return None  # re-bound where the loss is computed: not the one built
        return owner
