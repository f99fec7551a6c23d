"""The `eval_func` the fit is tuned with: the script's own evaluation of the model at the
fit, its call rewritten to evaluate the candidate model. A part of `PostTrainingPlanner`
(post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import evaluation
from neural_coder.analysis.final_model import FinalModel

from .post_training_fit_call import FitCall


class EvalFunc(FitCall):
    """A part of `PostTrainingPlanner` (post_training.py): the evaluation that tunes the fit."""

    def _evaluation_for(
        self, place: FinalModel, evaluations: list[evaluation.Evaluation]
    ) -> tuple[evaluation.Evaluation, dict[str, str]] | None:
        """The script's evaluation of the model at `place` whose arguments all exist there
        (a loop variable is replaced by the first item of a literal the loop runs over);
        the evaluations that follow `place` first."""
        line = self.src.line(place.anchor)
        same = [e for e in evaluations if e.scope is place.scope and e.model_arg == place.model]
        # in the last epoch, the evaluation the fit goes before comes first
        follows = (lambda n: n >= line) if self.guard is not None else (lambda n: n > line)
        ordered = [e for e in same if follows(self.src.line(e.call))] + [
            e for e in same if not follows(self.src.line(e.call))
        ]
        for chosen in ordered:
            substitutions = evaluation.arguments_at(
                self.index, chosen, place.scope, line, after=place.where == "after"
            )
            if substitutions is not None:
                return chosen, substitutions
        return None

    def _eval_func(
        self,
        chosen: evaluation.Evaluation,
        substitutions: dict[str, str],
        place: FinalModel,
        named: bool = False,
    ) -> tuple[str, list[str]]:
        """The `eval_func` expression, and the statements that define it before the fit:
        a lambda over the script's call (a function when `named`: the fit names it twice);
        for a function that reads the model from the scope of the fit (`estimate_loss()`
        reading a module-level `model`), a function that binds that name to the candidate
        for the call and then back."""
        candidate = self.free_name("candidate")
        call = self._eval_call(chosen, candidate, substitutions)
        if chosen.key is not None:
            call = f"{call}[{chosen.key!r}]"
        elif evaluation.returns_a_tuple(chosen.function):
            call = f"{call}[0]"
        if self.options.target == "inc":
            # INC's tuning asserts `np.isscalar` on what eval_func returns, and on a failed
            # assertion keeps the fp32 model: a tensor (`correct / total` summed without
            # `.item()`) or a numpy array would quantize nothing
            call = f"float({call})"
        if not chosen.reads_model and not named:
            return f"lambda {candidate}: {call}", []
        name = self.free_name("evaluate_candidate")
        if not chosen.reads_model:
            return name, [f"def {name}({candidate}):", f"    return {call}"]
        kept = self.free_name("trained_model")
        model = chosen.model_arg
        declare = "global" if isinstance(place.scope, cst.Module) else "nonlocal"
        return name, [
            f"def {name}({candidate}):",
            f"    {declare} {model}",
            f"    {kept}, {model} = {model}, {candidate}",
            "    try:",
            f"        return {call}",
            "    finally:",
            f"        {model} = {kept}",
        ]

    def _eval_call(
        self, chosen: evaluation.Evaluation, candidate: str, substitutions: dict[str, str]
    ) -> str:
        params = chosen.function.positional_params()
        args = []
        for position, arg in enumerate(chosen.call.args):
            is_model = (
                arg.keyword.value == chosen.model_param
                if arg.keyword
                else (position < len(params) and params[position] == chosen.model_param)
            )
            if is_model:
                args.append(arg.with_changes(value=cst.Name(candidate)))
                continue
            text = self.src.code(arg.value)
            if text in substitutions:
                arg = arg.with_changes(value=cst.parse_expression(substitutions[text]))
            args.append(arg)
        return self.src.module.code_for_node(chosen.call.with_changes(args=args))
