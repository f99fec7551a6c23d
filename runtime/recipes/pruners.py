"""Distiller's pruners over the recipe's epochs, as masks (see `masks.MaskStore`).

* `AutomatedGradualPruner`: Zhu & Gupta's schedule over the epochs its policy
  fires at, `s = s_f + (s_i - s_f) * (1 - (e - e_0) / span)^3`, lowest
  magnitudes first, per parameter.
* `L1/L2RankedStructureParameterPruner_AGP`: the same schedule over whole
  filters or input channels ranked by their L1 / L2 norm.
* `SparsityLevelParameterPruner`: each parameter to its level.
* `SensitivityPruner`: weights with `|w| < s * std(w)`, `s` the parameter's
  sensitivity (recomputed at each firing, as Distiller does).
* `L1/L2RankedStructureParameterPruner`: a fraction of filters or channels at once.

Selection reuses `pruning.patterns` (`lowest_k`, `unit_count`): exactly
`floor(ratio * units)` units, already pruned ones first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from ..pruning.patterns import lowest_k, unit_count
from .groups import check_group, expand_groups, group_matrix
from .masks import MaskStore
from .names import WEIGHTS, first_match, match_keys
from .schema import Instance, Policy

__all__ = ["RecipePruner", "agp_sparsity", "build_pruner"]


def agp_sparsity(initial: float, final: float, epoch: int, first: int, last: int) -> float:
    """Automated gradual pruning's target at `epoch` for firings from `first` to `last`."""
    if last <= first:
        return final
    frac = min(max((epoch - first) / (last - first), 0.0), 1.0)
    return final + (initial - final) * (1.0 - frac) ** 3


class RecipePruner:
    """One pruner instance over the parameters it names."""

    def __init__(self, instance: Instance, params: Mapping[str, nn.Parameter]) -> None:
        self.instance = instance
        self.args = instance.args
        where = f"pruners.{instance.name}"
        names = list(params)
        self.targets: dict[str, float] = {}
        if "weights" in self.args:
            chosen = match_keys(self.args["weights"], names, WEIGHTS, where)
            final = float(self.args.get("final_sparsity", self.args.get("desired_sparsity", 0.0)))
            self.targets = dict.fromkeys(chosen, final)
        elif "levels" in self.args:
            self.targets = {
                n: float(v)
                for n, v in first_match(self.args["levels"], names, WEIGHTS, where).items()
            }
        else:
            self.targets = {
                n: float(v)
                for n, v in first_match(self.args["sensitivities"], names, WEIGHTS, where).items()
            }
        self.params = {n: params[n] for n in self.targets}
        self.group = {"Filters": "Filters", "Channels": "Channels"}.get(
            self.args.get("group_type", "")
        )
        if self.group is not None:
            for n, p in self.params.items():
                check_group(self.group, p.shape, n)
        self.norm = 2 if instance.cls.startswith("L2") else 1
        self.firings = 0

    @property
    def gradual(self) -> bool:
        return "initial_sparsity" in self.args

    def goal(self, name: str, epoch: int, policy: Policy, run_epochs: int | None) -> float:
        if not self.gradual:
            return self.targets[name]
        last = policy.last_epoch(run_epochs)
        return agp_sparsity(
            float(self.args["initial_sparsity"]),
            self.targets[name],
            epoch,
            policy.starting_epoch,
            policy.starting_epoch if last is None else last,
        )

    def prune(self, epoch: int, policy: Policy, store: MaskStore, run_epochs: int | None) -> None:
        self.firings += 1
        with torch.no_grad():
            for name, p in self.params.items():
                keep = store.keep(name, p)
                if self.instance.cls == "SensitivityPruner":
                    threshold = self.targets[name] * float(p.detach().float().std())
                    store.update(name, p, p.detach().abs() > threshold)
                    continue
                goal = self.goal(name, epoch, policy, run_epochs)
                if self.group is None:
                    scores = p.detach().abs().float().masked_fill(~keep, -math.inf).flatten()
                    pruned = lowest_k(scores, unit_count(goal, scores.numel()))
                    store.update(name, p, ~pruned.view(p.shape))
                    continue
                matrix = group_matrix(p.detach().float(), self.group)
                alive = group_matrix(keep, self.group).any(dim=1)
                scores = matrix.norm(p=self.norm, dim=1).masked_fill(~alive, -math.inf)
                pruned = lowest_k(scores, unit_count(goal, scores.numel()))
                store.update(name, p, expand_groups(~pruned, p.shape, self.group))

    def reached(self, store: MaskStore) -> dict[str, float]:
        return {n: store.sparsity(n) for n in self.params}


def build_pruner(instance: Instance, params: Mapping[str, nn.Parameter]) -> RecipePruner:
    return RecipePruner(instance, params)
