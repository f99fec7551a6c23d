"""A model sharded by FSDP (`FullyShardedDataParallel(model, ...)`, `fully_shard(model)`).

FSDP replaces the module's parameters by flat shards that only exist whole inside its
forward and backward: the runtime's pruning masks and QAT modules, the distillation
wrapper and the post-training fits' copies all work on whole modules, and under FSDP
they select nothing, crash the ranks or hang (measured on CPU with gloo). Refused
where every run shards the model; a warning where a branch does (`if args.fsdp:`).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis.expressions import is_main_guard
from neural_coder.analysis.index import Index
from neural_coder.analysis.workers import worker_start
from neural_coder.errors import AnalysisError

SHARDERS = ("FullyShardedDataParallel", "fully_shard")


def sharding_call(index: Index) -> cst.Call | None:
    for call in index.calls:
        if index.source.module_of(call) is not index.source.module:
            continue  # a helper module's sharding (a library's utilities) may never run
        qualified = index.qualified(call.func)
        if qualified.startswith("torch.") and qualified.rsplit(".", 1)[-1] in SHARDERS:
            return call
    return None


def _every_run_reaches(index: Index, call: cst.Call) -> bool:
    """No `if` around `call`, and its function (if any) is called, or started in workers
    (`mp.spawn(fsdp_main, ...)`), from a place with no `if` around it; not a callback
    handed to a strategy that may never run it (`parallelize_fn=parallelize_fn`)."""
    if _branched(index, call):
        return False
    fn = index.function(index.scope_of(call))
    if fn is None:
        return True
    starts = [*index.call_sites(fn), worker_start(index, fn)]
    return any(start is not None and not _branched(index, start) for start in starts)


def _branched(index: Index, node: cst.CSTNode) -> bool:
    """An `if` around `node`, other than `if __name__ == "__main__":`."""
    return any(isinstance(a, cst.If) and not is_main_guard(a) for a in index.source.ancestors(node))


def check_sharding(index: Index, approach: str) -> str | None:
    """A warning when a branch shards the model; raises when every run does."""
    call = sharding_call(index)
    if call is None:
        return None
    src = index.source
    line = src.line(call)
    what = src.code(call.func)
    why = (
        f"the model is sharded by {what} at line {line}: FSDP keeps its parameters as flat "
        f"shards, which {approach} cannot work on (the runtime prunes, quantizes and copies "
        "whole modules)"
    )
    if not _every_run_reaches(index, call):
        return f"{why}; the runs that shard it will fail"
    raise AnalysisError(
        why,
        path=src.path,
        line=line,
        hint="compress with DistributedDataParallel (or in one process) instead of FSDP, or "
        "save the full state dict after training and quantize it in a script that loads "
        "it into the unwrapped model",
    )
