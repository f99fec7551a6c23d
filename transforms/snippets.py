"""Code the transforms insert, as formatted text.

Only these snippets are formatted as black lays them out (to the file's line length less
the indentation they land at); the user's own code is never reformatted. `snippet_layout`
lays out the subset the builders produce; black is imported only for the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from neural_coder.transforms.lazy import lazy_module
from neural_coder.transforms.snippet_layout import format_snippet

if TYPE_CHECKING:
    import black
else:
    black = lazy_module("black")

MARKER = "# neural-coder"

# The Trainer integration exists only in the runtime: INC 2.x has none, and the
# callback drives any manager through the INC 2.x callback names.
TRANSFORMERS_INTEGRATION = "neural_coder.runtime.integrations.transformers"
RUNTIME_MODULES = {
    "runtime": {
        "package": "neural_coder.runtime",
        "config": "neural_coder.runtime.config",
        "training": "neural_coder.runtime.training",
        "transformers": TRANSFORMERS_INTEGRATION,
    },
    "inc": {
        "package": "neural_compressor",
        "config": "neural_compressor.config",
        "training": "neural_compressor.training",
        "transformers": TRANSFORMERS_INTEGRATION,
    },
}


class Code(str):
    """A Python expression to render as is (not as a literal)."""


def render_value(value: object) -> str:
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{render_value(k)}: {render_value(v)}" for k, v in value.items()) + "}"
        )
    return repr(value)


def call(name: str, kwargs: Mapping[str, object] = {}, args: Sequence[object] = ()) -> str:  # noqa: B006
    parts = [render_value(a) for a in args] + [f"{k}={render_value(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def format_code(code: str, line_length: int) -> str:
    """black's layout of generated code; black itself (slow to import) only for what
    `snippet_layout` does not cover."""
    if os.environ.get(RECORD_ENV):
        record(code, line_length)
    laid_out = format_snippet(code, line_length)
    if laid_out is not None:
        return laid_out
    mode = black.Mode(line_length=max(line_length, 40))
    return black.format_str(code, mode=mode)


UNBOUNDED = 1_000_000
# ends a user's call that optimize laid out again because the added manager made its one line
# too long: revert joins it back (and a second run sees the statement as the tool's)
WRAPPED_MARKER = "# neural-coder: wrapped"


def join_lines(code: str) -> str:
    """`code` as black lays it out with no line limit and no magic trailing comma: a call
    spread over several lines comes back onto one."""
    return black.format_str(code, mode=black.Mode(line_length=UNBOUNDED, magic_trailing_comma=False))


def is_one_line_canonical(code: str) -> bool:
    """Whether black would leave this one-line statement exactly as it is (so a layout change
    can be joined back byte for byte)."""
    if code.count("\n") != 1:
        return False
    laid_out = format_snippet(code, UNBOUNDED)  # None: outside its subset, black decides
    return (laid_out if laid_out is not None else join_lines(code)) == code


# Set to a file path, every snippet formatted is appended to it as JSON `[code, line_length]`
# (to compare snippet_layout with black on what real runs format: see tests/coder/test_snippet_layout.py).
RECORD_ENV = "NEURAL_CODER_RECORD_SNIPPETS"


def record(code: str, line_length: int) -> None:
    import json

    with open(os.environ[RECORD_ENV], "a", encoding="utf-8") as out:
        out.write(json.dumps([code, line_length]) + "\n")
