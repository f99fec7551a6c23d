"""How long the training runs: steps per epoch, epochs, the total, gradient accumulation."""

from __future__ import annotations

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds, steps
from .expressions import Loop, while_bound
from .index import Assignment, Index, unconditional
from .loop_types import Hop, TrainingLoop
from .source import Source

WRAPPING_ITERATORS = frozenset({"enumerate", "tqdm", "iter"})


class LoopLength:
    """A part of `LoopAnalysis` (training.py): it reads `self.index` and `self.source`."""

    index: Index
    source: Source

    # -- run length ------------------------------------------------------------------------
    def _total_steps(
        self, loop: TrainingLoop, step_hops: list[Hop], outer_hops: list[Hop]
    ) -> str | None:
        """An expression, valid where the entry loop is, for the optimizer steps in the run."""
        limit = self._step_limit(loop.step_loop)
        if limit is not None:
            # `if completed_steps >= args.max_train_steps: break`: the run's real length
            mapped = self.map_up(limit, outer_hops)
            if mapped is not None:
                return mapped
        per_epoch = self._iterations(loop.step_loop)
        if per_epoch is None:
            loop.notes.append("could not tell how many batches the step loop runs")
            return None
        # The step loop may sit in a function below the entry scope.
        per_epoch = self.map_up(per_epoch, outer_hops)
        if per_epoch is None:
            loop.notes.append("the step loop's data loader is not visible where training starts")
            return None
        accumulation = self._accumulation(loop)
        if accumulation is not None:
            per_epoch = f"{per_epoch} // {accumulation}"
        if loop.epoch_loop is None:
            return per_epoch
        epochs = self._iterations(loop.epoch_loop)
        if epochs is None:
            loop.notes.append("could not tell how many epochs the run has")
            return None
        return f"{epochs} * {per_epoch}"

    def _iterations(self, node: Loop) -> str | None:
        if isinstance(node, cst.While):
            return while_bound(node)
        iterable = self._unwrap_iterable(node.iter, node)
        if iterable is None:
            return None
        if isinstance(iterable, cst.Call) and self.source.code(iterable.func) in {
            "range",
            "trange",
        }:
            args = iterable.args
            if len(args) == 1:
                inner = self.source.code(args[0].value)
                return (
                    inner
                    if isinstance(args[0].value, cst.Name | cst.Attribute | cst.Integer)
                    else f"({inner})"
                )
            return f"len({self.source.code(iterable)})"
        if isinstance(iterable, cst.Name | cst.Attribute):
            return f"len({self.source.code(iterable)})"
        if isinstance(iterable, cst.Subscript):
            return self._training_phase_loader(iterable, node)
        return None

    def _training_phase_loader(self, iterable: cst.Subscript, node: Loop) -> str | None:
        """`len(dataloaders["train"])` for `for x, y in dataloaders[phase]` inside
        `for phase in ["train", "val"]`: the batches of the training phase."""
        index = iterable.slice[0].slice if len(iterable.slice) == 1 else None
        if not isinstance(index, cst.Index) or not isinstance(index.value, cst.Name):
            return None
        if not isinstance(iterable.value, cst.Name | cst.Attribute):
            return None
        scope = self.index.scope_of(node)
        phases = next(
            (
                a
                for a in self.source.ancestors(node)
                if isinstance(a, cst.For)
                and m.matches(a.target, m.Name(index.value.value))
                and self.is_phase_loop(a, scope)
            ),
            None,
        )
        if phases is None:
            return None
        values = [phases.iter]
        if isinstance(phases.iter, cst.Name):
            values = [a.value for a in self.index.assignments_in(phases.iter.value, scope)]
        names = {
            e.value.value
            for v in values
            if isinstance(v, cst.List | cst.Tuple | cst.Set)
            for e in v.elements
            if isinstance(e.value, cst.SimpleString) and "train" in e.value.value.lower()
        }
        if len(names) != 1:
            return None
        return f"len({self.source.code(iterable.value)}[{names.pop()}])"

    def _step_limit(self, step_loop: Loop) -> str | None:
        """`LIMIT` of `if counter >= LIMIT: break` in the step loop's body (not in a
        nested loop): a budget of steps that ends the run (`--max_train_steps`)."""
        src = self.source
        for node in m.findall(step_loop.body, m.If()):
            assert isinstance(node, cst.If)
            ends = m.findall(node.body, m.Break() | m.Return())
            if not ends or self.enclosing_loop(ends[0], self.index.scope_of(node)) is not step_loop:
                continue
            tests = [node.test]
            if isinstance(node.test, cst.BooleanOperation) and isinstance(
                node.test.operator, cst.And
            ):
                tests = [node.test.left, node.test.right]
            # `if self.max_steps is not None and step >= self.max_steps: break`: a budget that
            # may be absent is no run length
            optional = {
                src.code(t.left)
                for t in tests
                if isinstance(t, cst.Comparison)
                and len(t.comparisons) == 1
                and isinstance(t.comparisons[0].operator, cst.IsNot)
                and m.matches(t.comparisons[0].comparator, m.Name("None"))
            }
            for test in tests:
                if (
                    isinstance(test, cst.Comparison)
                    and len(test.comparisons) == 1
                    and isinstance(
                        test.comparisons[0].operator, cst.GreaterThanEqual | cst.GreaterThan
                    )
                    and isinstance(test.left, cst.Name | cst.Attribute)
                    and isinstance(test.comparisons[0].comparator, cst.Name | cst.Attribute)
                    and src.code(test.comparisons[0].comparator) not in optional
                    and self._counts_steps(test.left, step_loop)
                ):
                    return src.code(test.comparisons[0].comparator)
        return None

    def _counts_steps(self, counter: cst.BaseExpression, step_loop: Loop) -> bool:
        """`step` of `for step, batch in enumerate(loader)`, or a name the file counts up
        (`completed_steps += 1`): not `running_reward` of `if running_reward >
        env.spec.reward_threshold: break`, an early stop on a metric."""
        text = self.source.code(counter)
        if isinstance(step_loop, cst.For) and text in {
            self.source.code(n) for n in m.findall(step_loop.target, m.Name())
        }:
            return True
        if any(
            isinstance(node.operator, cst.AddAssign) and self.source.code(node.target) == text
            for node in m.findall(self.source.module, m.AugAssign())
        ):
            return True
        # `step = step + 1`
        return any(
            self.source.code(node.targets[0].target) == text
            and isinstance(node.value, cst.BinaryOperation)
            and isinstance(node.value.operator, cst.Add)
            and self.source.code(node.value.left) == text
            for node in m.findall(self.source.module, m.Assign())
            if isinstance(node, cst.Assign) and len(node.targets) == 1
        )

    def _unwrap_iterable(
        self, iterable: cst.BaseExpression, loop: Loop, depth: int = 0
    ) -> cst.BaseExpression | None:
        """What a loop really iterates over: through `enumerate(...)`, `tqdm(...)`,
        progress loggers that take the loader (`metric_logger.log_every(loader, 10)`), and
        names bound to those in the loop's scope (`pbar = enumerate(loader)`)."""
        src = self.source
        if depth > 8:
            return None
        if isinstance(iterable, cst.NamedExpr):  # `enumerate(pbar := tqdm(loader))`
            return self._unwrap_iterable(iterable.value, loop, depth + 1)
        if isinstance(iterable, cst.Call):
            name = src.code(iterable.func).split(".")[-1]
            if name in {"range", "trange"}:
                return iterable
            positional = [a.value for a in iterable.args if a.keyword is None and not a.star]
            if name == "zip":
                # `zip(loader, range(start_iter, max_iter))`: the range bounds the run (the
                # loader may be endless, detectron2's has no len())
                bounded = [
                    a
                    for a in positional
                    if isinstance(a, cst.Call) and src.code(a.func) in {"range", "trange"}
                ]
                if bounded:
                    return bounded[0]
            if name in WRAPPING_ITERATORS or any(self._is_loader(a, loop) for a in positional):
                if not positional:
                    return None
                return self._unwrap_iterable(positional[0], loop, depth + 1)
            return iterable
        if isinstance(iterable, cst.Name):
            scope = self.index.scope_of(loop)
            before = [
                a
                for a in self.index.assignments_in(iterable.value, scope)
                if src.line(a.statement) < src.line(loop)
            ]
            aliased = self._aliased_loader(before)
            if aliased is not None:
                return aliased
            if before and not self._is_loader(iterable, loop):
                # `pbar = enumerate(loader)`; `if rank == 0: pbar = tqdm(pbar)`: the first binding
                first = min(before, key=lambda a: src.line(a.statement))
                value = first.value
                if isinstance(value, cst.Call) and value is not iterable:
                    inner = self._unwrap_iterable(value, loop, depth + 1)
                    if inner is not value:
                        return inner
        return iterable

    def _aliased_loader(self, bindings: list[Assignment]) -> cst.BaseExpression | None:
        """The one loader that every binding names: `active_dataloader = train_dataloader`
        on one path, `accelerator.skip_first_batches(train_dataloader, resume_step)` on
        the resume path (bound in the epoch loop, so only the loader is known before it)."""
        loaders: dict[str, cst.BaseExpression] = {}
        for binding in bindings:
            value = binding.value
            if isinstance(value, cst.Call) and self.source.code(value.func).endswith(
                "skip_first_batches"
            ):
                value = value.args[0].value if value.args else None
            if not isinstance(value, cst.Name | cst.Attribute):
                return None
            loaders[self.source.code(value)] = value
        return next(iter(loaders.values())) if len(loaders) == 1 else None

    def _is_loader(self, expr: cst.BaseExpression, loop: Loop) -> bool:
        if not isinstance(expr, cst.Name | cst.Attribute):
            return False
        scope = self.index.scope_of(loop)
        if any(
            kinds.is_dataloader(self.index, leaf) for leaf, _ in self.index.values_of(expr, scope)
        ):
            return True
        return "loader" in self.source.code(expr).split(".")[-1].lower()

    def _accumulation(self, loop: TrainingLoop) -> str | None:
        """`N` in `if (i + 1) % N == 0: optimizer.step()`, or in
        `loss_scaler(loss, optimizer, update_grad=(i + 1) % N == 0)`."""
        if loop.step_in_scaler:
            return self._scaler_accumulation(loop)
        for ancestor in self.source.ancestors(loop.optimizer_step):
            if ancestor is loop.step_loop:
                return None
            if isinstance(ancestor, cst.If):
                found, mapped = self._modulo_accumulation(loop, ancestor.test)
                if found:
                    return mapped
                self._note_skipped_steps(loop, ancestor)
        return None

    def _modulo_accumulation(
        self, loop: TrainingLoop, test: cst.BaseExpression
    ) -> tuple[bool, str | None]:
        """N of the first `... % N` in `test` (or in the value of the name `test` is, bound
        in the step loop: `need_update = last_batch or (i + 1) % accum_steps == 0`),
        recorded as the loop's accumulation: whether there is one, and N as written where
        training starts (None: not visible there)."""
        if isinstance(test, cst.Name):
            test = self._bound_in_the_step_loop(loop, test) or test
        for modulo in m.findall(test, m.BinaryOperation(operator=m.Modulo())):
            assert isinstance(modulo, cst.BinaryOperation)
            divisor = self.source.code(modulo.right)
            loop.accumulation = divisor
            mapped = self.map_up(divisor, loop.hops)
            if mapped is None and isinstance(modulo.right, cst.Name):
                # `accum_steps = args.grad_accum_steps` before the loop (lowered for the
                # last, shorter group inside it): the value the run starts with
                initial = self._bound_before_the_step_loop(loop, modulo.right)
                if initial is not None:
                    mapped = self.map_up(self.source.code(initial), loop.hops)
            if mapped is None:
                loop.notes.append(
                    f"gradient accumulation by {divisor} is not visible where training starts"
                )
            return True, mapped
        return False, None

    def _bound_in_the_step_loop(
        self, loop: TrainingLoop, name: cst.Name
    ) -> cst.BaseExpression | None:
        """The value `name` is given once in the step loop's body, before the step."""
        src = self.source
        scope = self.index.scope_of(loop.step_loop)
        bound = [
            a
            for a in self.index.assignments_in(name.value, scope)
            if any(n is loop.step_loop for n in src.ancestors(a.statement))
        ]
        return bound[0].value if len(bound) == 1 else None

    def _bound_before_the_step_loop(
        self, loop: TrainingLoop, name: cst.Name
    ) -> cst.BaseExpression | None:
        """The value `name` is first given in the step loop's function, before that loop
        and outside any branch or loop."""
        src = self.source
        scope = self.index.scope_of(loop.step_loop)
        start = src.line(loop.step_loop)
        bound = sorted(
            (
                a
                for a in self.index.assignments_in(name.value, scope)
                if src.line(a.statement) < start
            ),
            key=lambda a: src.line(a.statement),
        )
        if not bound or not unconditional(self.index, bound[0].statement, scope):
            return None
        return bound[0].value

    def _scaler_accumulation(self, loop: TrainingLoop) -> str | None:
        keyword = m.Name("update_grad") | m.Name("need_update")  # MAE / DeiT, timm
        call = next(
            iter(
                m.findall(
                    loop.optimizer_step,
                    m.Call(args=[m.ZeroOrMore(), m.Arg(keyword=keyword), m.ZeroOrMore()]),
                )
            ),
            None,
        )
        if call is None:
            return None
        assert isinstance(call, cst.Call)
        arg = next(a for a in call.args if a.keyword and m.matches(a.keyword, keyword))
        flag = arg.value
        found, mapped = self._modulo_accumulation(loop, flag)
        if found:
            return mapped
        loop.notes.append(
            f"the scaler steps the optimizer only when {self.source.code(arg).replace(' ', '')}: "
            "the run length counts batches, so pruning may end later than planned; pass "
            "--end-step with the number of optimizer steps"
        )
        return None

    def _note_skipped_steps(self, loop: TrainingLoop, chain: cst.If) -> None:
        """An optimizer step that some batches skip (`if ni - last_opt_step >= accumulate:`)
        in a way the tool cannot count: the schedule's length is then only an upper bound."""
        src = self.source
        if isinstance(src.parent(chain), cst.If) or steps.branch_holding(src, loop.backward, chain):
            return
        holding = steps.branch_holding(src, loop.optimizer_step, chain)
        others = [b for b in steps.branches(chain) if b is not holding]
        if any(steps.within(src, s, others) for s in loop.other_steps):
            return  # a choice between two steps, each hooked
        loop.notes.append(
            f"the optimizer step at line {src.line(loop.optimizer_step)} runs only when "
            f"{src.code(chain.test)}: the run length counts batches, so pruning may end later "
            "than planned; pass --end-step with the number of optimizer steps"
        )
