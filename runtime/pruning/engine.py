"""Weight pruning with INC 2.x semantics (spec 2.6, 3): criteria, patterns, schedules.

Masks are keyed by module name and applied in place (`weight.data.mul_(mask)`)
after every optimizer step, so QAT's module replacement (which keeps names and
Parameters) does not disturb them; progress counts optimizer steps only.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..compressor import Compressor
from ..config import WeightPruningConfig, process_pruning_config

log = logging.getLogger("neural_coder.runtime")
GRADIENT_CRITERIA = ("gradient", "snip", "snip_momentum")


@dataclass(frozen=True)
class Pattern:
    """`NxM` blocks (rows x input columns of the 2-D view) or `N:M` groups."""

    n: int | None  # None: "channel" (the whole dimension)
    m: int | None
    n_in_m: bool = False

    @classmethod
    def parse(cls, text: str) -> Pattern:
        text = text.rsplit("_", 1)[-1]
        if ":" in text:
            n, m = text.split(":")
            return cls(int(n), int(m), n_in_m=True)
        rows, cols = text.split("x")
        return cls(
            None if rows == "channel" else int(rows), None if cols == "channel" else int(cols)
        )

    def block(self, shape: tuple[int, int]) -> tuple[int, int]:
        return (self.n or shape[0], self.m or shape[1])

    def valid(self, shape: tuple[int, int]) -> bool:
        if self.n_in_m:
            return shape[1] % (self.m or 1) == 0
        rows, cols = self.block(shape)
        return shape[0] % rows == 0 and shape[1] % cols == 0


def as_2d(tensor: torch.Tensor) -> torch.Tensor:
    """Linear [out, in] as is; Conv [out, in, kh, kw] -> [out, kh*kw*in] (spec 3.6)."""
    if tensor.dim() == 4:
        return tensor.permute(0, 2, 3, 1).reshape(tensor.shape[0], -1)
    if tensor.dim() == 3:
        return tensor.permute(0, 2, 1).reshape(tensor.shape[0], -1)
    return tensor.reshape(tensor.shape[0], -1)


def from_2d(mask2d: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if len(shape) == 4:
        return (
            mask2d.reshape(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2).contiguous()
        )
    if len(shape) == 3:
        return mask2d.reshape(shape[0], shape[2], shape[1]).permute(0, 2, 1).contiguous()
    return mask2d.reshape(shape)


def target_at(decay: str, start: float, target: float, done: int, total: int) -> float:
    """The scheduled sparsity after `done` of `total` pruning steps (spec 3.4)."""
    ratio = min(done / total, 1.0) if total else 1.0
    if decay == "exp":
        value = 1 - (1 - start) * ((1 - target) / (1 - start)) ** ratio
    elif decay == "cos":
        value = (target - start) * (1 - math.cos(ratio * math.pi / 2)) + start
    elif decay == "linear":
        value = (target - start) * ratio + start
    elif decay == "cube":
        value = (target - start) * ratio**3 + start
    else:
        raise ValueError(f"sparsity_decay_type {decay!r} is not one of exp, cos, linear, cube")
    return min(target, value)


@dataclass
class Layer:
    name: str
    shape: torch.Size
    mask: torch.Tensor  # same shape and dtype as the weight
    score: torch.Tensor | None = None


@dataclass
class Pruner:
    info: dict[str, Any]
    layers: dict[str, Layer] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    global_step: int = 0
    handled_step: int = -1
    completed: int = 0
    total: int = 1
    current: float = 0.0

    def __post_init__(self) -> None:
        start, end, freq = (
            self.info["start_step"],
            self.info["end_step"],
            self.info["pruning_frequency"],
        )
        self.pattern = Pattern.parse(self.info["pattern"])
        self.criterion = self.info["pruning_type"].removesuffix("_progressive")
        self.total = (end - start + freq) // freq - 1
        if self.total == 0:
            self.total, self.completed = 1, 1  # one-shot
        self.target = min(self.info["target_sparsity"], self.info["max_sparsity_ratio_per_op"])

    def is_pruning_step(self, step: int) -> bool:
        start, end, freq = (
            self.info["start_step"],
            self.info["end_step"],
            self.info["pruning_frequency"],
        )
        return start <= step <= end and (step - start) % freq == 0


class PruningCompressor(Compressor):
    """INC's `PruningCallbacks`: one pruner per processed pruning config."""

    kind = "pruning"

    def __init__(self, conf: WeightPruningConfig) -> None:
        super().__init__(conf)
        self.pruners: list[Pruner] = []
        self._weights: dict[str, nn.Parameter] = {}
        self.excluded_head: str | None = None
        self._final: dict[str, Any] | None = None

    # -- module resolution --------------------------------------------------------------
    def bind(self, wrapper: Any) -> None:
        super().bind(wrapper)
        model = wrapper.model
        modules = dict(model.named_modules())
        linears = [n for n, mod in modules.items() if isinstance(mod, nn.Linear)]
        self.excluded_head = linears[-1] if linears else None
        for info in process_pruning_config(self.conf):
            pruner = Pruner(info)
            if (
                pruner.criterion in GRADIENT_CRITERIA
                and info["end_step"] > 0
                and info["start_step"] < 1
            ):
                log.warning(
                    "pruning: %s needs gradients; start_step 0 has none, so step 0 only collects scores",
                    pruner.criterion,
                )
            for name, module in modules.items():
                weight = getattr(module, "weight", None)
                if not isinstance(weight, torch.Tensor) or not self._selected(name, module, info):
                    continue
                view = as_2d(weight.detach())
                if not pruner.pattern.valid(tuple(view.shape)):
                    pruner.invalid.append(name)
                    continue
                pruner.layers[name] = Layer(name, weight.shape, torch.ones_like(weight))
            if pruner.invalid:
                log.info(
                    "pruning: layers not divisible by %s are left dense: %s",
                    info["pattern"],
                    ", ".join(pruner.invalid),
                )
            self.pruners.append(pruner)
        self._resolve(model)

    def _selected(self, name: str, module: nn.Module, info: dict[str, Any]) -> bool:
        if name == self.excluded_head or not name:
            return False
        if not any(t in type(module).__name__ for t in info["pruning_op_types"]):
            return False
        if not any(re.search(p, name) for p in info["op_names"]):
            return False
        return not any(re.search(p, name) for p in info["excluded_op_names"])

    def _resolve(self, model: nn.Module) -> None:
        modules = dict(model.named_modules())
        by_identity = {id(getattr(m, "weight", None)): n for n, m in modules.items()}
        resolved: dict[str, nn.Parameter] = {}
        for pruner in self.pruners:
            for name in pruner.layers:
                module = modules.get(name)
                weight = getattr(module, "weight", None) if module is not None else None
                if not isinstance(weight, torch.Tensor) and name in self._weights:
                    moved = by_identity.get(id(self._weights[name]))
                    weight = modules[moved].weight if moved is not None else None
                if isinstance(weight, torch.Tensor) and weight.is_floating_point():
                    resolved[name] = weight  # type: ignore[assignment]
        self._weights = resolved

    def on_model_replaced(self, old: nn.Module, new: nn.Module) -> None:
        self._resolve(new)

    # -- hooks --------------------------------------------------------------------------------
    def on_step_begin(self, batch_id: int) -> None:
        for pruner in self.pruners:
            if pruner.handled_step == pruner.global_step:
                continue
            pruner.handled_step = pruner.global_step
            self._update_masks(pruner)

    def on_before_optimizer_step(self) -> None:
        for pruner in self.pruners:
            if (
                pruner.criterion not in GRADIENT_CRITERIA
                or pruner.global_step > pruner.info["end_step"]
            ):
                continue
            for name, layer in pruner.layers.items():
                weight = self._weights.get(name)
                if weight is None or weight.grad is None:
                    continue
                grad = weight.grad.detach()
                fresh = (
                    grad.abs() if pruner.criterion == "gradient" else (weight.detach() * grad).abs()
                )
                if pruner.criterion == "snip_momentum" and layer.score is not None:
                    layer.score.mul_(0.9).add_(fresh)
                else:
                    layer.score = fresh.clone()

    def on_after_optimizer_step(self) -> None:
        with torch.no_grad():
            for pruner in self.pruners:
                for name, layer in pruner.layers.items():
                    weight = self._weights.get(name)
                    if weight is not None:
                        weight.mul_(layer.mask)
                pruner.global_step += 1

    def on_train_end(self) -> None:
        # Measured now, on the float weights: QAT's finalize converts them to int8 afterwards.
        self._final = None
        self._final = summary = self.summary()
        log.info(
            "pruning finished: sparsity %.4f of the pruned layers (target %.4f)",
            summary["sparsity"] or 0.0,
            summary["target_sparsity"],
        )

    # -- masks ------------------------------------------------------------------------------------
    def _update_masks(self, pruner: Pruner) -> None:
        step = pruner.global_step
        if pruner.criterion == "pattern_lock":
            if step == pruner.info["start_step"]:
                for name, layer in pruner.layers.items():
                    weight = self._weights.get(name)
                    if weight is not None:
                        layer.mask = self._lock(pruner, weight.detach() != 0).to(layer.mask.dtype)
                self._apply(pruner)
            return
        if not pruner.is_pruning_step(step) or pruner.current >= pruner.target:
            return
        if pruner.criterion == "magnitude":
            for name, layer in pruner.layers.items():
                weight = self._weights.get(name)
                if weight is not None:
                    layer.score = weight.detach().abs()
        if any(layer.score is None for layer in pruner.layers.values()):
            return  # gradient criteria have no scores before the first backward
        for layer in pruner.layers.values():
            # Masks only grow: a pruned weight keeps score 0. (INC's gradient criterion
            # can revive a pruned weight whose gradient is large; it then stays at zero
            # until the optimizer moves it, so the reached sparsity overshoots the target.)
            assert layer.score is not None
            layer.score = layer.score * layer.mask.to(layer.score.dtype)
        target = target_at(
            pruner.info["sparsity_decay_type"], 0.0, pruner.target, pruner.completed, pruner.total
        )
        pruner.completed += 1
        self._masks(pruner, target)
        self._apply(pruner)
        pruner.current = self._sparsity(pruner)

    def _lock(self, pruner: Pruner, alive: torch.Tensor) -> torch.Tensor:
        view = as_2d(alive.float())
        if pruner.pattern.n_in_m:
            return alive
        rows, cols = pruner.pattern.block(tuple(view.shape))
        blocks = view.reshape(view.shape[0] // rows, rows, view.shape[1] // cols, cols).amax(
            dim=(1, 3)
        )
        expanded = blocks.repeat_interleave(rows, 0).repeat_interleave(cols, 1)
        return from_2d(expanded, alive.shape) > 0

    def _block_scores(self, pruner: Pruner, layer: Layer) -> torch.Tensor:
        assert layer.score is not None
        view = as_2d(layer.score.float())
        reduce = pruner.info.get("criterion_reduce_type", "mean")
        if pruner.pattern.n_in_m:
            n, m = pruner.pattern.n or 1, pruner.pattern.m or 1
            groups = view.reshape(view.shape[0], -1, m)
            smallest = groups.topk(n, dim=-1, largest=False).values
            return smallest.mean(-1) if reduce == "mean" else smallest.sum(-1)
        rows, cols = pruner.pattern.block(tuple(view.shape))
        blocks = view.reshape(view.shape[0] // rows, rows, view.shape[1] // cols, cols)
        if reduce == "max":
            return blocks.amax(dim=(1, 3))
        return blocks.mean(dim=(1, 3)) if reduce == "mean" else blocks.sum(dim=(1, 3))

    def _masks(self, pruner: Pruner, target: float) -> None:
        layers = list(pruner.layers.values())
        scores = [self._block_scores(pruner, layer) for layer in layers]
        scale = (pruner.pattern.m / pruner.pattern.n) if pruner.pattern.n_in_m else 1.0  # type: ignore[operator]
        group_target = min(target * scale, 1.0)
        cap = min(pruner.info["max_sparsity_ratio_per_op"] * scale, 1.0)
        if pruner.info["pruning_scope"] == "local":
            ratios = [min(group_target, cap)] * len(layers)
            pruned = [self._smallest(s, int(s.numel() * r)) for s, r in zip(scores, ratios)]
        else:
            pruned = self._global(
                scores, group_target, cap, pruner.info["min_sparsity_ratio_per_op"] * scale
            )
        for layer, score, blocks in zip(layers, scores, pruned):
            layer.mask = self._expand(pruner, layer, score, blocks).to(layer.mask.dtype)

    @staticmethod
    def _smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
        pruned = torch.zeros(scores.numel(), dtype=torch.bool)
        if k > 0:
            pruned[scores.flatten().topk(k, largest=False).indices] = True
        return pruned.reshape(scores.shape)

    def _global(
        self, scores: list[torch.Tensor], target: float, cap: float, floor: float
    ) -> list[torch.Tensor]:
        """One threshold across layers; layers over the cap (or under the floor) get
        their own exact ratio and the rest share what remains (spec 3.6)."""
        sizes = [s.numel() for s in scores]
        k_total = int(sum(sizes) * target)
        fixed: dict[int, int] = {}
        while True:
            free = [i for i in range(len(scores)) if i not in fixed]
            remaining = k_total - sum(fixed.values())
            if not free or remaining <= 0:
                counts = {i: 0 for i in free}
                break
            flat = torch.cat([scores[i].flatten() for i in free])
            chosen = torch.zeros(flat.numel(), dtype=torch.bool)
            chosen[flat.topk(min(remaining, flat.numel()), largest=False).indices] = True
            counts, offset = {}, 0
            for i in free:
                counts[i] = int(chosen[offset : offset + sizes[i]].sum())
                offset += sizes[i]
            over = {i: int(sizes[i] * cap) for i in free if counts[i] > int(sizes[i] * cap)}
            under = (
                {i: int(sizes[i] * floor) for i in free if counts[i] < int(sizes[i] * floor)}
                if floor > 0
                else {}
            )
            if not over and not under:
                break
            fixed.update(over or under)
        counts.update(fixed)
        return [self._smallest(scores[i], counts[i]) for i in range(len(scores))]

    def _expand(
        self, pruner: Pruner, layer: Layer, score: torch.Tensor, pruned: torch.Tensor
    ) -> torch.Tensor:
        """Block decisions back to a keep-mask of the weight's shape."""
        assert layer.score is not None
        view = as_2d(layer.score.float())
        if pruner.pattern.n_in_m:
            n, m = pruner.pattern.n or 1, pruner.pattern.m or 1
            groups = view.reshape(view.shape[0], -1, m)
            candidates = torch.zeros_like(groups, dtype=torch.bool)
            candidates.scatter_(-1, groups.topk(n, dim=-1, largest=False).indices, True)
            drop = candidates & pruned.unsqueeze(-1)
            keep = ~drop.reshape(view.shape)
        else:
            rows, cols = pruner.pattern.block(tuple(view.shape))
            keep = ~pruned.repeat_interleave(rows, 0).repeat_interleave(cols, 1)
        return from_2d(keep, layer.shape)

    def _apply(self, pruner: Pruner) -> None:
        with torch.no_grad():
            for name, layer in pruner.layers.items():
                weight = self._weights.get(name)
                if weight is not None:
                    layer.mask = layer.mask.to(weight.device, weight.dtype)
                    weight.mul_(layer.mask)

    def _sparsity(self, pruner: Pruner) -> float:
        zeros = sum(int((layer.mask == 0).sum()) for layer in pruner.layers.values())
        total = sum(layer.mask.numel() for layer in pruner.layers.values())
        return zeros / total if total else 0.0

    # -- report -------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        if self._final is not None:
            return self._final
        per_layer: dict[str, float] = {}
        zeros = total = 0
        for pruner in self.pruners:
            for name in pruner.layers:
                weight = self._weights.get(name)
                if weight is None:
                    continue
                layer_zeros = int((weight.detach() == 0).sum())
                per_layer[name] = layer_zeros / weight.numel()
                zeros += layer_zeros
                total += weight.numel()
        target = self.conf.weight_compression.target_sparsity
        sparsity = zeros / total if total else None
        granularity = max((self._block_fraction(p) for p in self.pruners), default=0.0)
        reached = sparsity is not None and sparsity >= target - max(granularity, 0.005)
        steps = max((p.global_step for p in self.pruners), default=0)
        result: dict[str, Any] = {
            "target_sparsity": target,
            "sparsity": sparsity,
            "per_layer_sparsity": per_layer,
            "pruning_target_reached": reached,
            "pruning_steps_seen": steps,
        }
        if not reached:
            end = max((p.info["end_step"] for p in self.pruners), default=0)
            result["pruning_note"] = (
                f"end_step {end} was never reached: the run had {steps} optimizer steps"
                if steps <= end
                else "the schedule ended below the target"
            )
        return result

    def _block_fraction(self, pruner: Pruner) -> float:
        """The sparsity one block of the pattern is worth, over the pruner's layers."""
        total = sum(layer.mask.numel() for layer in pruner.layers.values())
        if not total:
            return 0.0
        if pruner.pattern.n_in_m:
            return (pruner.pattern.n or 1) / total
        sizes = [
            pruner.pattern.block(tuple(as_2d(layer.mask).shape)) for layer in pruner.layers.values()
        ]
        return max(r * c for r, c in sizes) / total
