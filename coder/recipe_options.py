"""`--recipe schedule.yaml`: which training techniques a Distiller-style recipe needs
(so the planner inserts their hooks), read with the runtime's own parser (yaml
`safe_load`, every class and key checked) before any script is touched."""

from __future__ import annotations

from pathlib import Path

from neural_coder.errors import ConfigError

#: policy kind -> the technique whose hooks it needs
POLICY_TECHNIQUES = {
    "distiller": "distillation",
    "pruner": "pruning",
    "regularizer": "pruning",
    "quantizer": "qat",
}


def recipe_techniques(path: str) -> tuple[str, ...]:
    """The techniques (in the order distillation, pruning, qat) the recipe's policies use."""
    from neural_coder.runtime.recipes.schema import RecipeError, read_recipe

    try:
        recipe = read_recipe(path)
    except RecipeError as error:
        message = str(error).removeprefix(f"{path}: ")
        raise ConfigError(message, path=Path(path)) from None
    used = {POLICY_TECHNIQUES[p.kind] for p in recipe.policies if p.kind in POLICY_TECHNIQUES}
    if not used:
        raise ConfigError(
            "the recipe schedules no pruner, regularizer, quantizer or distiller policy, so "
            "nothing would be compressed",
            path=Path(path),
        )
    return tuple(t for t in ("distillation", "pruning", "qat") if t in used)


#: how scripts build their own LR schedule (a recipe's LR policies would step it twice)
SCRIPT_LR_SCHEDULES = ("lr_scheduler", "get_scheduler(", "get_linear_schedule_with_warmup(")


def lr_schedule_clash(path: str, script_text: str) -> str | None:
    """A warning when the recipe schedules the LR and the script has a schedule of its own."""
    from neural_coder.runtime.recipes.schema import RecipeError, read_recipe

    try:
        if not read_recipe(path).of_kind("lr_scheduler"):
            return None
    except RecipeError:  # revert re-plans without the file: the warning does not matter there
        return None
    if not any(marker in script_text for marker in SCRIPT_LR_SCHEDULES):
        return None
    return (
        "the recipe's lr_schedulers step the script's optimizer at the end of their epochs, and "
        "the script has an LR schedule of its own: both change the learning rate; remove one"
    )
