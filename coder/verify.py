"""Checks on a rewritten file before anything is written.

The output must compile, and it must not read a name that nothing defines
unless the original already did: the tool never emits code that names
something undefined.
"""

from __future__ import annotations

import builtins
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, ScopeProvider

from neural_coder.errors import NeuralCoderError

BUILTINS = frozenset(dir(builtins)) | {
    "__file__",
    "__name__",
    "__doc__",
    "__spec__",
    "__builtins__",
}


class VerificationError(NeuralCoderError):
    """The rewrite failed a safety check; nothing was written."""


def undefined_names(module: cst.Module) -> set[str]:
    scopes = MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopeProvider)
    missing: set[str] = set()
    for scope in {s for s in scopes.values() if s is not None}:
        for access in scope.accesses:
            if not access.referents and access.node.value not in BUILTINS:  # type: ignore[union-attr]
                missing.add(access.node.value)  # type: ignore[union-attr]
    return missing


def verify_rewrite(path: Path, original: cst.Module, rewritten_code: str) -> cst.Module:
    try:
        compile(rewritten_code, str(path), "exec")
        rewritten = cst.parse_module(rewritten_code)
    except SyntaxError as error:
        raise VerificationError(
            f"internal error: the rewritten file does not compile ({error.msg} at line {error.lineno}); nothing was written",
            path=path,
        ) from None
    new = undefined_names(rewritten) - undefined_names(original)
    if new:
        raise VerificationError(
            f"internal error: the rewrite would use undefined names ({', '.join(sorted(new))}); nothing was written",
            path=path,
        )
    return rewritten
