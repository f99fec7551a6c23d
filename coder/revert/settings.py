"""Reading back, from the inserted code, what `optimize` was asked for: the
approach (its configs, in order), and the settings its config calls hold as literals."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import libcst as cst

from neural_coder.already_compressed import COMPRESSION_CONFIGS, compression_in
from neural_coder.errors import NeuralCoderError
from neural_coder.options import SECTIONS, OptimizeOptions, build_options

from .strip import all_marked

#: approaches tried per family of inserted configs, most likely first
FAMILY_APPROACHES = {
    "ptq": ("ptq-static", "ptq-dynamic", "ptq-auto"),
    "bf16": ("bf16",),
    "benchmark": ("benchmark",),
}

INSERTED_FIT_RESULT = re.compile(r"^(nc_)?quantized_model(_\d+)?$")

_FIELD_SECTION = {
    f: section
    for section, cls in SECTIONS.items()
    for f in cls.__dataclass_fields__  # type: ignore[attr-defined]
}


def literal_settings(text: str) -> dict[str, dict[str, Any]]:
    """Literal keyword arguments of the inserted config calls, by options section."""
    settings: dict[str, dict[str, Any]] = {}
    module = cst.parse_module(text)
    for statement in all_marked(module):
        code = module.code_for_node(statement)
        try:
            tree = ast.parse(code.strip())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id.startswith("teacher_model"):
                    value = ast.unparse(node.value)
                    # a frozen copy: the default or --teacher copy, which insert the same
                    # code; "copy" reproduces it whatever the model holds
                    teacher = "copy" if value.startswith("copy.deepcopy(") else value
                    settings.setdefault("distillation", {})["teacher"] = teacher
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("load_state_dict"):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                        settings.setdefault("distillation", {})["teacher"] = inner.value
            if not isinstance(node, ast.Call):
                continue
            if _saved_to(node) is not None:  # `quantized_model.save("dir")`: --save-dir
                settings.setdefault("ptq", {})["save_dir"] = _saved_to(node)
            for keyword in node.keywords:
                if keyword.arg not in _FIELD_SECTION or keyword.arg == "teacher":
                    continue
                try:
                    value = ast.literal_eval(keyword.value)
                except ValueError:
                    continue
                if keyword.arg == "calibration_sampling_size" and isinstance(value, list):
                    value = value[0]
                settings.setdefault(_FIELD_SECTION[keyword.arg], {})[keyword.arg] = value
    return settings


def _saved_to(call: ast.Call) -> str | None:
    """The literal folder of the saved fit's `quantized_model.save("dir")`, or None."""
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "save"
        and isinstance(func.value, ast.Name)
        and INSERTED_FIT_RESULT.match(func.value.id)
        and len(call.args) == 1
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    ):
        return call.args[0].value
    return None


def recipe_in(text: str) -> str | None:
    """The recipe path of an inserted `RecipeConfig("path", ...)`, or None."""
    found = re.search(r"RecipeConfig\(\s*(\"[^\"\n]*\"|'[^'\n]*')", text)
    return ast.literal_eval(found.group(1)) if found else None


def recipe_approaches(text: str) -> list[str]:
    """The technique sets a recipe could have asked for, the likeliest first: distillation
    when a teacher is passed, QAT when the script takes the manager's model back."""
    likely = {"pruning"}
    if re.search(r"RecipeConfig\([^)]*teacher_model=", text, re.DOTALL):
        likely.add("distillation")
    if re.search(r"^\s*[\w.]+ = [\w.]*compression_manager[\w]*\.model  # neural-coder", text, re.M):
        likely.add("qat")
    canonical = ("distillation", "pruning", "qat")
    subsets = [
        {t for t, keep in zip(canonical, bits) if keep}
        for bits in itertools.product((True, False), repeat=3)
    ]
    ranked = sorted(
        (s for s in subsets if s),
        key=lambda s: (len(s ^ likely), len(s ^ (likely - {"pruning"}))),
    )
    return ["+".join(t for t in canonical if t in s) for s in ranked]


def approaches(text: str) -> list[str]:
    families = compression_in(text)
    if "recipe" in families:
        return recipe_approaches(text)
    post = [f for f in families if f in FAMILY_APPROACHES]
    training = families - set(post)
    order = {
        family: text.find(name + "(")
        for name, family in COMPRESSION_CONFIGS.items()
        if family in families
    }
    first = sorted(training, key=lambda f: order[f])
    if post:
        found = re.search(r"approach=[\"'](static|dynamic|auto)[\"']", text)
        fit = [f"ptq-{found.group(1)}"] if found and "ptq" in post else []
        fits = fit + [a for f in post for a in FAMILY_APPROACHES[f] if a not in fit]
        # a multi-shot pipeline that ends with a fit: the training stages, then the fit
        return [">".join([*first, a]) for a in fits] if first else fits
    if "PipelineConfig(" in text:  # stages, in the order of their configs
        return [">".join(first)]
    rest = [p for p in itertools.permutations(training) if list(p) != first]
    return ["+".join(p) for p in [tuple(first), *rest]]


def option_sets(text: str) -> list[dict[str, Any]]:
    literal = literal_settings(text)
    without_steps = {
        k: {f: v for f, v in section.items() if f not in ("start_step", "end_step")}
        for k, section in literal.items()
    }
    sets: list[dict[str, Any]] = [{}, without_steps, literal]
    split = re.search(r"stage_epochs=\[([\d, ]+)\]", text)  # a multi-shot split given
    if split:
        epochs = [int(v) for v in split.group(1).split(",")]
        sets = [{**s, "stage_epochs": epochs} for s in sets]
    unique: list[dict[str, Any]] = []
    for s in sets:
        if s not in unique:
            unique.append(s)
    return unique


#: how many settings a revert proves at the most before it gives up
MAX_TRIES = 12


def candidate_options(text: str, first_target: str) -> Iterator[tuple[str, str, OptimizeOptions]]:
    """(approach, target, options) that `optimize` may have been run with to insert the
    code in `text`: the approaches and literal settings read back from it, the target the
    strip step saw first (recipes exist only in the runtime), most likely first."""
    recipe = recipe_in(text)
    targets = [first_target] + [t for t in ("runtime", "inc") if t != first_target]
    if recipe is not None:
        targets = ["runtime"]
    for approach, options_set, target in itertools.product(
        approaches(text), option_sets(text), targets
    ):
        try:
            options = build_options(approach, target, dict(options_set), {})
        except NeuralCoderError:
            continue
        if recipe is not None:  # the recipe file itself is not needed to strip its hooks
            options = replace(options, recipe=recipe)
        yield approach, target, options


def asked_for(approach: str, options: OptimizeOptions) -> str:
    """The option `optimize` was given, as the report names it."""
    return f"--recipe {options.recipe}" if options.recipe is not None else f"--approach {approach}"
