"""Small facts about expressions and loops that the loop analysis and the planners share."""

from __future__ import annotations

import builtins

import libcst as cst

from neural_coder.transforms import match as m

from .index import is_partial, strip_method_calls, unwrap_pass_through

Loop = cst.For | cst.While
BUILTIN_NAMES = frozenset(dir(builtins))


def is_main_guard(node: cst.CSTNode) -> bool:
    """`if __name__ == "__main__":` (either way round): every run of the script takes it,
    so it is no branch that a model is built or used on only some of the time."""
    if not isinstance(node, cst.If) or not isinstance(node.test, cst.Comparison):
        return False
    test = node.test
    if len(test.comparisons) != 1 or not isinstance(test.comparisons[0].operator, cst.Equal):
        return False
    sides = [test.left, test.comparisons[0].comparator]
    return any(
        m.matches(a, m.Name("__name__"))
        and isinstance(b, cst.SimpleString)
        and b.evaluated_value == "__main__"
        for a, b in (sides, sides[::-1])
    )


def names_in(node: cst.CSTNode) -> list[cst.Name]:
    return list(m.findall(node, m.Name()))  # type: ignore[arg-type]


def passes_function(value: cst.BaseExpression, name: str) -> bool:
    """`fn`, `self.fn`, `partial(self.fn, ...)` / `functools.partial(fn, ...)`."""
    if is_partial(value):
        assert isinstance(value, cst.Call)
        value = value.args[0].value
    if isinstance(value, cst.Attribute):
        return value.attr.value == name
    return m.matches(value, m.Name(name))


#: `x.to(device)`: the same tensor, on another device
DEVICE_MOVES = frozenset({"to", "cuda", "cpu"})


def unmoved(value: cst.BaseExpression) -> cst.BaseExpression:
    """`x` of `x.to(device)`, `x.cuda(non_blocking=True)`: a batch item the fit feeds as
    it is (the runtime moves it to the model's device); not `x.float()`, which changes it."""
    return strip_method_calls(value, DEVICE_MOVES)


def is_dotted_name(expr: cst.BaseExpression) -> bool:
    return root_name(expr) is not None


def root_name(expr: cst.BaseExpression) -> str | None:
    """`a` in `a`, `a.b.c`; None for anything else (`f().b`, `a[0].b`)."""
    while isinstance(expr, cst.Attribute):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None


def while_bound(node: cst.While) -> str | None:
    """`N` in `while step < N` (a counter from 0 in steps of one is assumed)."""
    test = node.test
    if (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.left, cst.Name)
    ):
        target = test.comparisons[0]
        if isinstance(target.operator, cst.LessThan) and isinstance(
            target.comparator, cst.Name | cst.Attribute | cst.Integer
        ):
            return cst.Module(body=[]).code_for_node(target.comparator)
    return None


def free_names(expr: cst.BaseExpression) -> set[str]:
    """Names an expression reads (not attribute names, not keyword names)."""
    return {n.value for n in free_name_nodes(expr)}


def free_name_nodes(expr: cst.BaseExpression) -> list[cst.Name]:
    attrs = {id(a.attr) for a in m.findall(expr, m.Attribute())}  # type: ignore[union-attr]
    keywords = {id(a.keyword) for a in m.findall(expr, m.Arg()) if a.keyword is not None}  # type: ignore[union-attr]
    return [n for n in names_in(expr) if id(n) not in attrs and id(n) not in keywords]


def substitute(text: str, replacements: dict[str, str]) -> str:
    expr = cst.parse_expression(text)
    targets = {id(n) for n in free_name_nodes(expr)}

    class Substitute(cst.CSTTransformer):
        def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
            if id(original_node) in targets and original_node.value in replacements:
                return cst.parse_expression(replacements[original_node.value])
            return updated_node

    return cst.Module(body=[]).code_for_node(expr.visit(Substitute()))


def callee_name(call: cst.Call) -> str:
    """The last name of what `call` calls (`tqdm` for `tqdm.auto.tqdm(...)`), else ""."""
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def loop_var(node: Loop) -> str | None:
    if isinstance(node, cst.For) and isinstance(node.target, cst.Name):
        return node.target.value
    return None


def loop_index(node: Loop) -> str | None:
    """`i` in `for i, batch in enumerate(loader)`; `step` in `for step in range(n)`."""
    if not isinstance(node, cst.For):
        return None
    is_enumerate = isinstance(node.iter, cst.Call) and m.matches(
        node.iter.func, m.Name("enumerate")
    )
    if (
        is_enumerate
        and isinstance(node.target, cst.Tuple)
        and isinstance(node.target.elements[0].value, cst.Name)
    ):
        return node.target.elements[0].value.value
    if isinstance(node.iter, cst.Call) and m.matches(node.iter.func, m.Name("range")):
        return loop_var(node)
    return None


def unwrap(expr: cst.BaseExpression) -> cst.BaseExpression:
    return unwrap_pass_through(expr)


def early_exits(loop: Loop) -> list[cst.CSTNode]:
    """The `break` / `return` statements that end `loop` before its last iteration
    (early stopping), not those of the loops and functions nested in it."""
    found: list[cst.CSTNode] = []
    pending: list[cst.CSTNode] = [loop.body]
    while pending:
        node = pending.pop()
        if isinstance(node, cst.Break | cst.Return):
            found.append(node)
            continue
        for child in node.children:
            if isinstance(child, cst.For | cst.While):
                pending.extend(c for c in child.children if c is not child.body)  # its else
                continue
            if not isinstance(child, cst.FunctionDef | cst.ClassDef | cst.Lambda):
                pending.append(child)
    return found
