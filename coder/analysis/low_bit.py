"""Models loaded with 4-bit or 8-bit weights (bitsandbytes through `from_pretrained`).

Their linear layers are bitsandbytes modules whose weights are already packed
integers: quantizing, pruning or casting them to bf16 does not apply to them.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.transforms import match as m

from .index import Index, Scope

LOW_BIT_FLAGS = ("load_in_4bit", "load_in_8bit")
BNB_CONFIG = "BitsAndBytesConfig"


def low_bit_load(index: Index, model: str, scope: Scope) -> cst.Call | None:
    """The call that loads `model` with 4-bit or 8-bit weights, if any: a
    `from_pretrained(..., load_in_4bit=True)` or one given a `BitsAndBytesConfig`."""
    try:
        expression = cst.parse_expression(model)
    except cst.ParserSyntaxError:
        return None
    for leaf, leaf_scope in index.values_of(expression, scope):
        if isinstance(leaf, cst.Call) and _loads_low_bit(index, leaf, leaf_scope):
            return leaf
    return None


def _loads_low_bit(index: Index, call: cst.Call, scope: Scope) -> bool:
    for arg in call.args:
        if arg.keyword is None:
            continue
        if arg.keyword.value in LOW_BIT_FLAGS and not m.matches(arg.value, m.Name("False")):
            return True
        if arg.keyword.value == "quantization_config" and _is_bnb_config(index, arg.value, scope):
            return True
    return False


def _is_bnb_config(index: Index, value: cst.BaseExpression, scope: Scope) -> bool:
    for leaf, _ in index.values_of(value, scope):
        if isinstance(leaf, cst.Call) and index.qualified(leaf.func).endswith(BNB_CONFIG):
            return True
    return False
