"""Code the transforms insert, as formatted text.

Only these snippets are formatted with black (to the file's line length less
the indentation they land at); the user's own code is never reformatted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import black

MARKER = "# neural-coder"

RUNTIME_MODULES = {
    "runtime": {
        "config": "neural_coder.runtime.config",
        "training": "neural_coder.runtime.training",
    },
    "inc": {"config": "neural_compressor.config", "training": "neural_compressor.training"},
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
    mode = black.Mode(line_length=max(line_length, 40))
    return black.format_str(code, mode=mode)
