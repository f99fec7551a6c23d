"""QAT observers kept identical on every rank under torch.distributed.

Each rank's observers see that rank's batches, so their running min / max (and
the scales and zero points computed from them) drift apart, and so would the
int8 models each rank converts. DDP does not fix this: it broadcasts rank 0's
buffers at the start of each forward at best (only with `broadcast_buffers`, and
only for a model that had buffers when DDP was built), and every rank's last
forward updates its own observers again.

`ObserverSync`:

* `step()`, after every optimizer step: one all-reduce (MIN) of the per-tensor
  observers' `min_val` and `-max_val`, started by `start()` right after the
  forward when the loop calls `on_after_compute_loss` (so it runs while backward
  computes), else started and waited for here. `flush()` (at `on_step_end`)
  applies a started one in a loop that never reports its optimizer step. The moving average
  `m <- (1 - c) m + c x` is increasing in the batch statistic `x`, so when the
  ranks start a step from the same `m`, the minimum over ranks of their updated
  `m` is exactly the update by the minimum over ranks of their batch minima:
  the running range of the whole global batch, as one process would see it.
  Per-channel observers (weights) are left out: DDP keeps the weights, and so
  their ranges, identical.
* `finish()`, before int8 conversion: `step()` once more (evaluation forwards
  after the last step update observers too), then every buffer of the model is
  made rank 0's (BatchNorm statistics, which a converted Conv+BN folds in, and
  the per-channel observers), and each fake-quant's `scale` / `zero_point` is
  recomputed from its synced observer.

Observers are found by duck typing: a module with `min_val` / `max_val` tensors
(torch.ao's min-max observers); a fake-quant is a module with an
`activation_post_process` observer and `scale` / `zero_point` buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import distributed

__all__ = ["ObserverSync"]


def _is_minmax_observer(module: nn.Module) -> bool:
    return isinstance(getattr(module, "min_val", None), torch.Tensor) and isinstance(
        getattr(module, "max_val", None), torch.Tensor
    )


def _is_fake_quant(module: nn.Module) -> bool:
    return (
        _is_minmax_observer(getattr(module, "activation_post_process", None))  # type: ignore[arg-type]
        and isinstance(getattr(module, "scale", None), torch.Tensor)
        and isinstance(getattr(module, "zero_point", None), torch.Tensor)
        and callable(getattr(module, "calculate_qparams", None))
    )


class ObserverSync:
    """The observers of one QAT-prepared model, synced across ranks (module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        observers = [m for m in model.modules() if _is_minmax_observer(m)]
        # per-tensor ranges have a fixed size (0-dim) on every rank from the start
        self.per_tensor = [m for m in observers if m.min_val.dim() == 0]  # type: ignore[union-attr]
        self.fake_quants = [m for m in model.modules() if _is_fake_quant(m)]
        #: ranges synced (optimizer steps, plus one before conversion)
        self.steps = 0
        self._pending: distributed.MinMaxReduction | None = None

    def start(self) -> None:
        """After a forward (`on_after_compute_loss`): start the all-reduce of the ranges
        now, so that it runs during backward; `step()` applies it. One still in
        flight from an earlier forward (gradient accumulation) is dropped."""
        if self._pending is not None:
            self._pending.discard()
        self._pending = distributed.start_min_max(*self._ranges())

    def step(self) -> None:
        """After the optimizer step: min of `min_val`, max of `max_val` over the ranks
        (the reduction `start()` began, else a new one)."""
        pending, self._pending = self._pending, None
        if pending is None:
            pending = distributed.start_min_max(*self._ranges())
        if pending is not None:
            pending.apply()
            self.steps += 1

    def flush(self) -> None:
        """Apply the reduction `start()` began, if one is in flight (else nothing)."""
        if self._pending is not None:
            self.step()

    def _ranges(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return (
            [m.min_val for m in self.per_tensor],  # type: ignore[misc]
            [m.max_val for m in self.per_tensor],  # type: ignore[misc]
        )

    def finish(self) -> None:
        """Before conversion: ranges synced, every buffer rank 0's, qparams recomputed."""
        self.step()
        named = list(self.model.named_buffers())
        same = distributed.same_layout(named)
        distributed.broadcast_tensors_([t for (_, t), ok in zip(named, same) if ok])
        with torch.no_grad():
            for fq in self.fake_quants:
                observer = fq.activation_post_process
                low, high = observer.min_val, observer.max_val  # type: ignore[union-attr]
                observed = low.numel() > 0 and bool(torch.isfinite(low).all())
                if not (observed and bool(torch.isfinite(high).all())):
                    continue  # never observed anything: keep the initial qparams
                scale, zero_point = fq.calculate_qparams()  # type: ignore[operator]
                for buffer, value in ((fq.scale, scale), (fq.zero_point, zero_point)):
                    buffer.resize_(value.shape).copy_(value)  # type: ignore[union-attr]
