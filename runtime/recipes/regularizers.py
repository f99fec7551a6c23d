"""Distiller's regularizers: `L1Regularizer` and `GroupLassoRegularizer`.

The penalty's gradient is added to each parameter's `.grad` right before the
optimizer step (`on_before_optimizer_step`), which is what adding the penalty to
the loss would give, without needing the loss hook:

* L1: `strength * sum |w|`, gradient `strength * sign(w)`;
* group lasso: `strength * sum_g ||w_g||_2` over the groups of `groups.py`,
  gradient `strength * w_g / ||w_g||_2`.

`threshold_criteria` (`Mean_Abs` or `Max`): at the end of the policy's last
epoch, as in Distiller, the elements (L1: `|w| < strength`) or groups (group
lasso: mean or max `|w|` of the group `< threshold`, `threshold` defaulting to
the strength as Distiller's) that the regularization drove to near zero become
masks that are kept for the rest of the run.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .groups import check_group, expand_groups, group_matrix
from .masks import MaskStore
from .names import WEIGHTS, first_match
from .schema import Instance

__all__ = ["RecipeRegularizer"]

_EPS = 1e-12


class RecipeRegularizer:
    def __init__(self, instance: Instance, params: Mapping[str, nn.Parameter]) -> None:
        self.instance = instance
        self.group_lasso = instance.cls == "GroupLassoRegularizer"
        where = f"regularizers.{instance.name}"
        regims = first_match(instance.args["reg_regims"], list(params), WEIGHTS, where)
        self.params = {n: params[n] for n in regims}
        self.strength: dict[str, float] = {}
        self.groups: dict[str, str] = {}
        for name, value in regims.items():
            if self.group_lasso:
                self.strength[name], self.groups[name] = float(value[0]), str(value[1])
                check_group(self.groups[name], self.params[name].shape, name)
            else:
                self.strength[name] = float(value)
        self.criterion: str | None = instance.args.get("threshold_criteria")
        self.threshold: float | None = instance.args.get("threshold")
        self.steps = 0
        self.thresholded: dict[str, float] = {}

    def add_gradients(self) -> None:
        """Add the penalty's gradient to every parameter's `.grad`."""
        self.steps += 1
        with torch.no_grad():
            for name, p in self.params.items():
                if p.grad is None:
                    continue
                strength = self.strength[name]
                if not self.group_lasso:
                    p.grad.add_(torch.sign(p), alpha=strength)
                    continue
                kind = self.groups[name]
                norms = group_matrix(p, kind).norm(dim=1).clamp_min(_EPS)
                p.grad.add_(p / expand_groups(norms, p.shape, kind), alpha=strength)

    def penalty(self) -> float:
        """The regularization term's current value (for the summary)."""
        total = 0.0
        with torch.no_grad():
            for name, p in self.params.items():
                if self.group_lasso:
                    total += self.strength[name] * float(
                        group_matrix(p, self.groups[name]).norm(dim=1).sum()
                    )
                else:
                    total += self.strength[name] * float(p.abs().sum())
        return total

    def apply_threshold(self, store: MaskStore) -> None:
        """The policy's last epoch ended: near-zero elements or groups become kept masks."""
        if self.criterion is None:
            return
        with torch.no_grad():
            for name, p in self.params.items():
                limit = self.threshold if self.threshold is not None else self.strength[name]
                if not self.group_lasso:
                    store.update(name, p, p.abs() >= limit)
                else:
                    kind = self.groups[name]
                    magnitudes = group_matrix(p.abs(), kind)
                    level = (
                        magnitudes.mean(dim=1)
                        if self.criterion == "Mean_Abs"
                        else magnitudes.amax(dim=1)
                    )
                    store.update(name, p, expand_groups(level >= limit, p.shape, kind))
                self.thresholded[name] = store.sparsity(name)
