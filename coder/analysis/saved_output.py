"""Where a post-training fit that nothing reads afterwards keeps its result, and under
which main-process check of the script it writes it.

A training script that only evaluates or checkpoints inside its training loop (`for
epoch ...: train(epoch); test(epoch)`, nanoGPT's `while True:` iteration loop) never
reads the trained model after the loop. The post-training fit then goes after training
and is followed by a save of the compressed model (planning/post_training_save.py); this
module answers where that save writes (beside the script's own checkpoints when they are
written to a folder the fit can name, else `neural_coder_output/<approach>`) and which
`if master_process:` style test of the script it runs under.
"""

from __future__ import annotations

import os

import libcst as cst

from neural_coder.transforms import match as m

from .expressions import root_name
from .index import Index, Scope

DEFAULT_ROOT = "neural_coder_output"
#: names a script gives its "this process is the main one" flag or function
MAIN_PROCESS_NAMES = frozenset(
    {
        "master_process",
        "is_master",
        "is_master_process",
        "main_process",
        "is_main_process",
        "is_main",
        "is_rank_zero",
        "is_global_zero",
        "is_local_main_process",
        # Hugging Face `trainer.is_world_process_zero()`, torch_xla's `xm.is_master_ordinal()`
        "is_world_process_zero",
        "is_local_process_zero",
        "is_master_ordinal",
    }
)
#: names a script gives its process rank (`if rank == 0:`, `if args.local_rank in [-1, 0]:`)
RANK_NAMES = frozenset({"rank", "global_rank", "local_rank", "ddp_rank", "world_rank"})
#: functions that return the process rank (`dist.get_rank() == 0`)
RANK_FUNCTIONS = frozenset({"get_rank", "get_global_rank", "get_local_rank", "get_world_rank"})
#: environment variables a launcher sets to the process rank (`os.environ["LOCAL_RANK"]`)
RANK_VARIABLES = frozenset({"RANK", "LOCAL_RANK", "GLOBAL_RANK", "SLURM_PROCID"})
PATH_JOINS = frozenset({"os.path.join", "osp.join", "path.join"})


def output_dir(index: Index, scope: Scope, line: int, approach: str) -> tuple[str, str]:
    """The folder expression the save writes to, and how it was chosen: a folder beside
    the script's checkpoints (`os.path.join(out_dir, "neural_coder_ptq-dynamic")` for
    `torch.save(..., os.path.join(out_dir, "ckpt.pt"))`, `f"{out_dir}/neural_coder_..."`
    for `f"{out_dir}/ckpt.pt"` or `Path(out_dir) / "ckpt.pt"`), or the default."""
    leaf = f"neural_coder_{approach}"
    found = _checkpoint_dir(index, scope, line)
    if found is None:
        return repr(f"{DEFAULT_ROOT}/{approach}"), "the default, relative to the working directory"
    folder, call = found
    where = f"beside the checkpoint the script writes at line {index.source.line(call)}"
    if isinstance(folder, str):  # a literal folder
        return repr(os.path.join(folder, leaf)), where
    join, expression = folder
    if join is None:  # no join function in the script's own path: an f-string
        return f'f"{{{expression}}}/{leaf}"', where
    return f"{join}({expression}, {leaf!r})", where


#: a checkpoint's folder: a literal, or (the join function or None, the folder expression)
Folder = str | tuple[str | None, str]


def _checkpoint_dir(index: Index, scope: Scope, line: int) -> tuple[Folder, cst.Call] | None:
    """The folder of a checkpoint the file writes (`save(obj, os.path.join(D, name))` with
    `D` in reach at `line` of `scope`, or `save(obj, "dir/name.pt")`); a save in `scope`
    first."""
    src = index.source
    module = src.module_of(scope)
    found: list[tuple[bool, tuple[Folder, cst.Call]]] = []
    for call in index.calls:
        if src.module_of(call) is not module:
            continue
        name = src.code(call.func).rsplit(".", 1)[-1].lower()
        if "save" not in name or "state_dict" in name:
            continue
        for arg in call.args[1:] if len(call.args) > 1 else ():
            folder = _folder_of(index, arg.value, scope, line)
            if folder is not None:
                found.append((index.scope_of(call) is not scope, (folder, call)))
                break
    found.sort(key=lambda pair: pair[0])  # stable: the same scope first, then file order
    return found[0][1] if found else None


def _folder_of(index: Index, path: cst.BaseExpression, scope: Scope, line: int) -> Folder | None:
    src = index.source

    def reachable(folder: cst.BaseExpression) -> bool:
        root = root_name(folder)
        return root is not None and in_reach(index, root, scope, line)

    if isinstance(path, cst.SimpleString):
        value = path.evaluated_value
        folder = os.path.dirname(value) if isinstance(value, str) else ""
        return folder or None
    if (
        isinstance(path, cst.Call)
        and src.code(path.func) in PATH_JOINS
        and len(path.args) >= 2
        and all(a.keyword is None and not a.star for a in path.args)
    ):
        folder = path.args[0].value
        if isinstance(folder, cst.SimpleString):
            value = folder.evaluated_value
            return value if isinstance(value, str) and value else None
        join_root = src.code(path.func).split(".", 1)[0]
        if reachable(folder) and in_reach(index, join_root, scope, line):
            return src.code(path.func), src.code(folder)
    if isinstance(path, cst.FormattedString) and len(path.parts) >= 2:  # f"{out_dir}/ckpt.pt"
        head, rest = path.parts[0], path.parts[1]
        if (
            isinstance(head, cst.FormattedStringExpression)
            and head.conversion is None
            and head.format_spec is None
            and isinstance(rest, cst.FormattedStringText)
            and rest.value.startswith("/")
            and reachable(head.expression)
        ):
            return None, src.code(head.expression)
    if isinstance(path, cst.BinaryOperation) and isinstance(path.operator, cst.Divide):
        folder = path.left  # `Path(out_dir) / "ckpt.pt"`, `out_dir / "ckpt.pt"`
        if (
            isinstance(folder, cst.Call)
            and len(folder.args) == 1
            and src.code(folder.func)
            in (
                "Path",
                "pathlib.Path",
            )
        ):
            folder = folder.args[0].value
        if reachable(folder):
            return None, src.code(folder)
    return None


def main_process_test(index: Index, scope: Scope, line: int) -> str | None:
    """The script's own "this is the main process" test (`master_process`,
    `utils.is_main_process()`, `args.rank == 0`, `local_rank in [-1, 0]`) from an `if` of
    `scope`, when its names are in reach at `line`; None when it has none."""
    src = index.source
    body = scope.body if isinstance(scope, cst.FunctionDef) else scope
    for found in m.findall(body, m.If()):
        if index.scope_of(found) is not scope:
            continue
        test = found.test  # type: ignore[attr-defined]
        operands = (
            [test.left, test.right]
            if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And)
            else [test]
        )
        for operand in operands:
            root = _main_process_root(operand)
            if (
                root is not None
                and in_reach(index, root, scope, line)
                and not (_rank_call(operand) and _nested_in_an_if(index, found, scope))
            ):
                return src.code(operand)
        # `if not args.distributed or args.rank == 0:` (or `not dist.is_initialized() or
        # dist.get_rank() == 0`) as a whole
        if (
            isinstance(test, cst.BooleanOperation)
            and isinstance(test.operator, cst.Or)
            and isinstance(test.left, cst.UnaryOperation)
            and isinstance(test.left.operator, cst.Not)
            and (flag := _flag_root(test.left.expression)) is not None
            and in_reach(index, flag, scope, line)
        ):
            root = _main_process_root(test.right)
            if root is not None and in_reach(index, root, scope, line):
                return f"({src.code(test)})"
    return None


def _main_process_root(test: cst.BaseExpression) -> str | None:
    """The root name of `test` when it is a main-process check, else None."""
    if isinstance(test, cst.Name | cst.Attribute) and _last(test) in MAIN_PROCESS_NAMES:
        return root_name(test)
    if (
        isinstance(test, cst.Call)
        and not test.args
        and isinstance(test.func, cst.Name | cst.Attribute)
        and _last(test.func) in MAIN_PROCESS_NAMES
    ):
        return root_name(test.func)
    if _rank_call(test):
        return _rank_read_root(test.left)  # type: ignore[attr-defined]
    if (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.left, cst.Name | cst.Attribute)
        and _last(test.left) in RANK_NAMES
    ):
        target = test.comparisons[0]
        if isinstance(target.operator, cst.Equal) and m.matches(target.comparator, m.Integer("0")):
            return root_name(test.left)
        if isinstance(target.operator, cst.In) and isinstance(
            target.comparator, cst.List | cst.Tuple
        ):
            return root_name(test.left)
    return None


def _rank_call(test: cst.BaseExpression) -> bool:
    """`dist.get_rank() == 0`, `torch.distributed.get_rank() in (-1, 0)`,
    `int(os.environ.get("RANK", 0)) == 0`: a rank read by a call, compared with 0."""
    if not (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and _rank_read_root(test.left) is not None
    ):
        return False
    target = test.comparisons[0]
    if isinstance(target.operator, cst.Equal):
        return m.matches(
            target.comparator, m.Integer("0") | m.SimpleString('"0"') | m.SimpleString("'0'")
        )
    return isinstance(target.operator, cst.In) and isinstance(
        target.comparator, cst.List | cst.Tuple
    )


def _rank_read_root(expr: cst.BaseExpression) -> str | None:
    """The root name of `dist.get_rank()` (`dist`), of `int(os.environ.get("RANK", 0))`
    / `os.environ["LOCAL_RANK"]` / `os.getenv("RANK")` (`os`); None for anything else."""
    if m.matches(expr, m.Call(func=m.Name("int"))) and len(expr.args) == 1:  # type: ignore[attr-defined]
        expr = expr.args[0].value  # type: ignore[attr-defined]
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name | cst.Attribute):
        name = _last(expr.func)
        if name in RANK_FUNCTIONS and not expr.args:
            return root_name(expr.func)
        if name in ("get", "getenv") and expr.args and _names_a_rank_variable(expr.args[0].value):
            return root_name(expr.func)
        return None
    if (
        isinstance(expr, cst.Subscript)
        and _last(expr.value) == "environ"
        and len(expr.slice) == 1
        and isinstance(expr.slice[0].slice, cst.Index)
        and _names_a_rank_variable(expr.slice[0].slice.value)
    ):
        return root_name(expr.value)
    return None


def _names_a_rank_variable(key: cst.BaseExpression) -> bool:
    return isinstance(key, cst.SimpleString) and key.evaluated_value in RANK_VARIABLES


def _nested_in_an_if(index: Index, node: cst.CSTNode, scope: Scope) -> bool:
    """`node` sits under another `if` of `scope` (`if ddp: ... if dist.get_rank() == 0:`):
    the rank call may fail where that `if` does not hold (no process group)."""
    for ancestor in index.source.ancestors(node):  # type: ignore[attr-defined]
        if ancestor is scope:
            return False
        if isinstance(ancestor, cst.If | cst.Else):
            return True
    return False


def _flag_root(flag: cst.BaseExpression) -> str | None:
    """`ddp`, `args.distributed`, or the function of a call without arguments
    (`dist.is_initialized()`)."""
    if isinstance(flag, cst.Call) and not flag.args:
        return root_name(flag.func)
    return root_name(flag)


def in_reach(index: Index, name: str, scope: Scope, line: int) -> bool:
    """`name` is bound at `line` of `scope`: a parameter (or `self`), a local assigned
    before it, or a name the module assigns or imports."""
    src = index.source
    fn = index.function(scope)
    if fn is not None:
        if name in fn.all_params() or (name == "self" and fn.is_method):
            return True
        if any(src.line(a.statement) < line for a in index.assignments_in(name, scope)):
            return True
    module = src.module_of(scope)
    if name in index.imports_of(scope):
        return True
    return any(
        fn is not None or src.line(a.statement) < line for a in index.assignments_in(name, module)
    )


def _last(expr: cst.BaseExpression) -> str:
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return expr.value if isinstance(expr, cst.Name) else ""
