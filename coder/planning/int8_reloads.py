"""A Hugging Face model folder the script saves after compressing to int8 and loads back
itself (`trainer.save_model("final")` ... `AutoModelForSequenceClassification
.from_pretrained("final")`, the course's train-then-infer layout).

The bundled runtime saves an int8 model as `best_model.pt` beside the config (its packed
weights are no safetensors), and a model QAT trained under a `Trainer` as its fake-quant
weights with the recipe in the config. A transformers class loads neither as the int8
model: the first raises "no file named model.safetensors", the second gives back a float
model. `OptimizedModel.from_pretrained(folder, model_class=...)` loads every one of them
(a float folder too), so that load is rewritten to it.
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis.index import Index, Scope
from neural_coder.analysis.trainer import TrainerUse
from neural_coder.options import OptimizeOptions
from neural_coder.transforms import match as m
from neural_coder.transforms.edits import (
    AddImport,
    AddKeywordArgument,
    Edit,
    InsertStatements,
    ReplaceExpression,
)
from neural_coder.transforms.snippets import TRANSFORMERS_INTEGRATION

INT8_TECHNIQUES = frozenset({"qat", "ptq-static", "ptq-dynamic", "ptq-auto"})
SAVES = ("save_model", "save_pretrained")
LOADER = "OptimizedModel"


def int8_folder_reloads(
    index: Index, options: OptimizeOptions, plan_edits: list[Edit], trainers: list[TrainerUse]
) -> tuple[list[Edit], list[str]]:
    """The edits that load the folders saved after the compression back with
    `OptimizedModel`, and what the report says of each."""
    if options.target != "runtime" or not INT8_TECHNIQUES.intersection(options.techniques):
        return [], []
    compressed_from = _last_insertion(index, plan_edits)
    saved = [
        (save, folder)
        for save, folder in _saved_folders(index, trainers)
        if index.source.line(save) >= compressed_from
    ]
    edits: list[Edit] = []
    placed: list[str] = []

    def saved_before(folder: str, line: int) -> bool:
        return any(
            saved_folder == folder and index.source.line(save) < line
            for save, saved_folder in saved
        )

    for call in index.calls:
        line = index.source.line(call)
        folder = _reloaded_folder(index, call)
        if folder is not None and saved_before(folder, line):
            model_class = index.source.code(call.func.value)  # type: ignore[attr-defined]
            edits.append(ReplaceExpression(call.func, f"{LOADER}.from_pretrained"))
            edits.append(AddKeywordArgument(call, "model_class", model_class))
            placed.append(
                f"{LOADER}.from_pretrained: the int8 folder {folder} loaded at line {line}"
            )
        model_arg = _pipeline_model(index, call)
        if model_arg is not None and saved_before(
            _folder_key(index, model_arg, index.scope_of(call)), line
        ):
            folder = index.source.code(model_arg)
            edits.append(ReplaceExpression(model_arg, f"{LOADER}.from_pretrained({folder})"))
            if not any(a.keyword is not None and a.keyword.value == "tokenizer" for a in call.args):
                edits.append(AddKeywordArgument(call, "tokenizer", folder))
            placed.append(
                f"{LOADER}.from_pretrained: the int8 folder {folder} in the pipeline at line {line}"
            )
    if edits:
        edits.append(AddImport(TRANSFORMERS_INTEGRATION, LOADER))
    return edits, placed


def _last_insertion(index: Index, edits: list[Edit]) -> float:
    """The line after which the plan's code has run (the fit, `on_train_end`, the Trainer
    given its callback); a save from there on writes the compressed model."""
    lines = [0.0]
    for edit in edits:
        if isinstance(edit, InsertStatements) and edit.anchor in index.source.positions:
            lines.append(index.source.line(edit.anchor) + (0.5 if edit.where == "after" else 0))
    return max(lines)


def _saved_folders(index: Index, trainers: list[TrainerUse]) -> list[tuple[cst.Call, str]]:
    """`trainer.save_model(path)`, `model.save_pretrained(path)`: each call and its folder
    (`_folder_key`); `trainer.save_model()` saves to its TrainingArguments' output_dir."""
    found = []
    for call in index.calls:
        if m.matches(call.func, m.Attribute(attr=m.OneOf(*(m.Name(n) for n in SAVES)))):
            scope = index.scope_of(call)
            path = _first_argument(call, "output_dir", "save_directory")
            if path is not None:
                found.append((call, _folder_key(index, path, scope)))
                continue
            use = next((u for u in trainers if call in u.save_calls), None)
            if use is not None and use.args is not None:
                # arguments parsed into dataclasses (HfArgumentParser) name the folder only
                # as `training_args.output_dir`
                folder = _output_dir(index, use.args, use.scope)
                found.append((call, folder or f"{index.source.code(use.args)}.output_dir"))
    return found


def _folder_key(index: Index, path: cst.BaseExpression, scope: Scope) -> str:
    """The code of the folder `path` names, with `training_args.output_dir` read as the
    `output_dir=` the TrainingArguments were built with (`args.out`), so that a save and
    a load spelled either way match."""
    if m.matches(path, m.Attribute(attr=m.Name("output_dir"))):
        folder = _output_dir(index, path.value, scope)  # type: ignore[attr-defined]
        if folder is not None:
            return folder
    return index.source.code(path)


def _output_dir(index: Index, arguments: cst.BaseExpression, scope: Scope) -> str | None:
    """The code of `output_dir` of the `...TrainingArguments(...)` call `arguments` stands
    for, when there is one such call and it names the folder."""
    folders = {
        index.source.code(path)
        for leaf, _ in index.values_of(arguments, scope)
        if isinstance(leaf, cst.Call) and index.qualified(leaf.func).endswith("TrainingArguments")
        for path in [_first_argument(leaf, "output_dir")]
        if path is not None
    }
    return folders.pop() if len(folders) == 1 else None


def _reloaded_folder(index: Index, call: cst.Call) -> str | None:
    """The folder's code when `call` is `<transformers model class>.from_pretrained(folder,
    ...)` (not a tokenizer's or a config's), else None."""
    if not m.matches(call.func, m.Attribute(attr=m.Name("from_pretrained"))):
        return None
    owner = index.qualified(call.func.value)  # type: ignore[attr-defined]
    name = owner.rsplit(".", 1)[-1]
    if not owner.startswith("transformers.") or not ("Model" in name or "For" in name):
        return None
    if any(arg.keyword is not None and arg.keyword.value == "model_class" for arg in call.args):
        return None
    path = _first_argument(call, "pretrained_model_name_or_path")
    return _folder_key(index, path, index.scope_of(call)) if path is not None else None


def _pipeline_model(index: Index, call: cst.Call) -> cst.BaseExpression | None:
    """`model=folder` of `transformers.pipeline(task, model=folder)` (or its second
    positional argument), when it names a folder (not a model object built before)."""
    if index.qualified(call.func) != "transformers.pipeline":
        return None
    positional = [a for a in call.args if a.keyword is None and not a.star]
    value = next((a.value for a in call.args if m.matches(a.keyword, m.Name("model"))), None)
    if value is None and len(positional) > 1:
        value = positional[1].value
    if value is None or not m.matches(value, m.SimpleString() | m.Name() | m.Attribute()):
        return None
    return value


def _first_argument(call: cst.Call, *keywords: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is None and not arg.star:
            return arg.value
        if arg.keyword is not None and arg.keyword.value in keywords:
            return arg.value
    return None
