"""The teacher returns what the student returns.

The teacher runs in eval mode, but some models return a different structure in
training: a detection head gives its raw feature maps while training and decoded
boxes in eval (`return x if self.training else (torch.cat(z, 1), x)`). Their output
would not pair with the training student's. Only the modules whose forward *returns*
on a plain `self.training` test run with the student's flag; normalisation, dropout
and stochastic depth (`if not self.training or p == 0: return x`) stay in eval."""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import textwrap
from collections.abc import Iterator

from torch import nn


def _is_training_flag(test: ast.expr) -> bool:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    return (
        isinstance(test, ast.Attribute)
        and test.attr == "training"
        and isinstance(test.value, ast.Name)
        and test.value.id == "self"
    )


@functools.cache
def returns_by_mode(cls: type) -> bool:
    """`cls.forward` returns on a plain `self.training` test (a conditional return value,
    or an `if self.training:` whose body returns)."""
    if cls.__module__.startswith("torch."):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls.forward)))
    except (OSError, TypeError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.IfExp):
            if _is_training_flag(node.value.test):
                return True
        if isinstance(node, ast.If) and _is_training_flag(node.test):
            if any(isinstance(n, ast.Return) for n in ast.walk(node)):
                return True
    return False


@contextlib.contextmanager
def student_output_mode(teacher: nn.Module, student_training: bool) -> Iterator[None]:
    """Inside the block, the teacher's modules that return by mode take the student's
    training flag; every flag is restored after."""
    flipped = []
    if student_training:
        flipped = [m for m in teacher.modules() if not m.training and returns_by_mode(type(m))]
    for module in flipped:
        module.training = True
    try:
        yield
    finally:
        for module in flipped:
            module.training = False
