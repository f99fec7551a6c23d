"""Pruning under a schedule-free optimizer (`schedulefree.AdamWScheduleFree`): its
`optimizer.eval()` / `optimizer.train()` move every weight between the training point
and the averaged one, kept in the optimizer's own state, which no pruning mask covers:
the zeros the pruner sets are gone after the next swap."""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import TrainingLoop, kinds
from neural_coder.analysis.index import Index
from neural_coder.errors import AnalysisError


def refuse_pruning_under_schedule_free(index: Index, loop: TrainingLoop) -> None:
    receiver = _stepped_optimizer(loop.optimizer_step)
    if receiver is None:
        return
    for leaf, _ in index.values_of(receiver, loop.step_scope):
        if kinds.is_optimizer(index, leaf) and kinds.is_schedule_free(index, leaf):
            line = index.source.line(leaf)
            raise AnalysisError(
                f"the optimizer built at line {line} ({index.source.code(leaf)}) is "
                "schedule-free: its eval() / train() swap every weight with an average it "
                "keeps itself, which undoes the pruning masks",
                path=index.source.path,
                line=line,
                hint="prune with a plain optimizer (AdamW with a learning-rate schedule); "
                "qat, distillation and the post-training approaches work as the script is",
            )


def _stepped_optimizer(statement: cst.BaseStatement) -> cst.BaseExpression | None:
    """`optimizer` of the `optimizer.step()` statement."""
    for node in _calls(statement):
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "step":
            return func.value
    return None


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    found: list[cst.Call] = []

    class Collect(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    node.visit(Collect())
    return found
