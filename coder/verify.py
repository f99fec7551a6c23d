"""Checks on a rewritten file before anything is written.

The output must compile, and it must not read a name that nothing defines
unless the original already did: the tool never emits code that names
something undefined.

Names are resolved by CPython's own symbol table (`symtable`, the pass the compiler
runs before code generation): the same rules the interpreter applies, at a cost far
below a libcst scope analysis of the whole file (a fraction of a parse, against
about 3x the libcst round trip), so verifying a large script costs almost nothing.
"""

from __future__ import annotations

import builtins
import symtable
from pathlib import Path

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


def undefined_names(code: str, filename: str = "<rewrite>") -> set[str]:
    """Names the code reads that no scope able to reach them binds, nor the builtins:
    a global read in any scope (a module-level name, or a name a function reads without
    binding it) that the module never assigns, imports, defines or declares `global` and
    assigns anywhere. Raises SyntaxError when the code does not parse."""
    top = symtable.symtable(code, filename, "exec")
    tables = [top]
    bound: set[str] = set()
    read_globally: set[str] = set()
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        is_module = table is top
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace():
                if is_module or symbol.is_declared_global():
                    bound.add(name)
            if symbol.is_referenced() and (is_module or symbol.is_global()):
                read_globally.add(name)
    return {name for name in read_globally - bound if name not in BUILTINS}


def verify_rewrite(path: Path, original_code: str, rewritten_code: str) -> None:
    try:
        compile(rewritten_code, str(path), "exec")
        new = undefined_names(rewritten_code, str(path))
        if new:  # (the original's are needed only then)
            new -= undefined_names(original_code, str(path))
    except SyntaxError as error:
        raise VerificationError(
            f"internal error: the rewritten file does not compile ({error.msg} at line {error.lineno}); nothing was written",
            path=path,
        ) from None
    if new:
        raise VerificationError(
            f"internal error: the rewrite would use undefined names ({', '.join(sorted(new))}); nothing was written",
            path=path,
        )
