"""The contract between the compression manager and each technique.

A `CompressionManager` owns one `Model` wrapper (see `model.py`) and one
`Compressor` per config, called in the order the configs were listed.
Compressors never hold on to module objects across a model replacement:
QAT preparation and conversion swap modules (and may swap the whole
top-level module), so a compressor that keeps per-module state keys it by
module name or by parameter identity and re-resolves it in
`on_model_replaced`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .model import Model


class Compressor:
    """One technique's hooks. Every hook is a no-op unless overridden."""

    #: short name used in logs and in the summary ("pruning", "qat", "distillation")
    kind: str = ""

    def __init__(self, conf: Any) -> None:
        self.conf = conf
        self.wrapper: Model | None = None

    # -- life cycle ---------------------------------------------------------
    def bind(self, wrapper: Model) -> None:
        """Called once, at manager construction, with the shared model wrapper."""
        self.wrapper = wrapper

    def on_model_replaced(self, old: torch.nn.Module, new: torch.nn.Module) -> None:
        """The wrapper's inner module changed (QAT prepare/convert); re-resolve."""

    def finalize(self) -> None:
        """Runs after every compressor's `on_train_end`, in list order.

        Structural conversions that would invalidate other compressors' state
        (QAT's int8 conversion) happen here, so that pruning and distillation
        finish on the trained float model whatever the list order.
        """

    def summary(self) -> dict[str, Any]:
        """Keys this technique contributes to the run summary."""
        return {}

    # -- training hooks (names and signatures of INC 2.x) ----------------------
    def on_train_begin(self, dataloader: Any = None) -> None: ...

    def on_epoch_begin(self, epoch: int) -> None: ...

    def on_step_begin(self, batch_id: int) -> Any: ...

    def on_after_compute_loss(
        self,
        input: Any,  # noqa: A002 - INC's parameter name
        student_output: Any,
        student_loss: torch.Tensor,
        teacher_output: Any = None,
    ) -> torch.Tensor | None:
        return None

    def on_before_optimizer_step(self) -> None: ...

    def on_after_optimizer_step(self) -> None: ...

    def on_step_end(self) -> Any: ...

    def on_epoch_end(self) -> list[Any]:
        return []

    def on_train_end(self) -> None: ...

    def on_before_eval(self) -> None: ...

    def on_after_eval(self) -> None: ...
