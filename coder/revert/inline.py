"""The tool's edits inside the script's own expressions, undone: the int8 folder loader
(`planning/int8_reloads.py`) and the safetensors state-dict wrappers
(`planning/safetensors_files.py`); and the arguments it appended, dropped."""

from __future__ import annotations

from typing import Any

import libcst as cst

#: what the tool wraps around the state dicts of safetensors saves and loads
STATE_DICT_WRAPPERS = ("tensors_only", "state_dict_from_tensors")


def without_state_dict_wrapper(call: cst.Call) -> cst.BaseExpression:
    """`tensors_only(state)` and `state_dict_from_tensors(load_file(path))`, which
    `planning/safetensors_files.py` wrote around the script's safetensors saves and
    loads, back to what they wrap."""
    if (
        isinstance(call.func, cst.Name)
        and call.func.value in STATE_DICT_WRAPPERS
        and len(call.args) == 1
        and call.args[0].keyword is None
        and not call.args[0].star
    ):
        return call.args[0].value
    return call


def is_int8_loader(func: cst.BaseExpression) -> bool:
    return (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and func.value.value == "OptimizedModel"
        and func.attr.value == "from_pretrained"
    )


def without_int8_loader(call: cst.Call) -> cst.Call:
    """What `planning/int8_reloads.py` wrote, back to the script's own code:
    `OptimizedModel.from_pretrained(folder, model_class=Auto...)` to
    `Auto....from_pretrained(folder)`, and `pipeline(task,
    model=OptimizedModel.from_pretrained(folder), tokenizer=folder)` to `pipeline(task,
    model=folder)`."""
    call = _pipeline_without_int8_loader(call)
    last = call.args[-1] if call.args else None
    if not (
        is_int8_loader(call.func)
        and last is not None
        and last.keyword is not None
        and last.keyword.value == "model_class"
    ):
        return call
    func = cst.Attribute(value=last.value, attr=cst.Name("from_pretrained"))
    return call.with_changes(func=func, args=drop_last(call.args, lambda a: a is last))


def _pipeline_without_int8_loader(call: cst.Call) -> cst.Call:
    loaded = next(
        (
            a
            for a in call.args
            if isinstance(a.value, cst.Call)
            and is_int8_loader(a.value.func)
            and len(a.value.args) == 1
        ),
        None,
    )
    if loaded is None:
        return call
    folder = loaded.value.args[0].value  # type: ignore[attr-defined]
    args = [a.with_changes(value=folder) if a is loaded else a for a in call.args]
    last = args[-1]
    if (
        last.keyword is not None
        and last.keyword.value == "tokenizer"
        and cst.Module([]).code_for_node(last.value) == cst.Module([]).code_for_node(folder)
    ):
        args = drop_last(args, lambda a: a is last)
    return call.with_changes(args=args)


def drop_last(items: Any, added: Any) -> list[Any]:
    """Remove the items the tool appended; the new last item gets the comma layout back."""
    items = list(items)
    keep = [i for i in items if not added(i)]
    if len(keep) == len(items):
        return items
    if keep:
        removed_last = items[-1]
        if items.index(keep[-1]) < len(items) - 1:
            previous = keep[-1]
            comma = removed_last.comma
            simple = (
                isinstance(previous.comma, cst.Comma)
                and previous.comma.whitespace_before == cst.SimpleWhitespace("")
                and previous.comma.whitespace_after == cst.SimpleWhitespace(" ")
            )
            if isinstance(comma, cst.Comma) or not simple:
                keep[-1] = previous.with_changes(comma=comma)  # one per line: the closing comma
            else:
                keep[-1] = previous.with_changes(comma=cst.MaybeSentinel.DEFAULT)
            closing = getattr(removed_last, "whitespace_after_arg", None)
            if isinstance(closing, cst.ParenthesizedWhitespace):
                # `(\n    a, b, added=x\n)`: the line break before ")" goes back after b
                keep[-1] = keep[-1].with_changes(whitespace_after_arg=closing)
    return keep
