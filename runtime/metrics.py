"""INC's built-in metrics (`TopK`, `Accuracy`, `MSE`, `MAE`, `RMSE`) and the evaluation
function `fit` builds from `eval_dataloader` + `eval_metric`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .batches import call_model, model_device, prediction, split_batch, to_device
from .progress import Progress


# -- metrics ---------------------------------------------------------------------------
class _Metric:
    """INC's metric protocol: `reset()`, `update(preds, labels)`, `result()`."""

    higher_is_better = True

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, preds: Any, labels: Any) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError


class TopK(_Metric):
    """Top-k accuracy of class scores `(N, C)` against labels `(N,)` or one-hot `(N, C)`."""

    def __init__(self, k: int = 1) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"topk k must be an int >= 1, got {k!r}")
        self.k = k
        self.reset()

    def reset(self) -> None:
        self.hits = 0
        self.seen = 0

    def update(self, preds: Any, labels: Any) -> None:
        scores = torch.as_tensor(prediction(preds)).detach().float().cpu()
        target = torch.as_tensor(labels).detach().cpu()
        if scores.dim() == 1:
            scores = scores.unsqueeze(0)
        scores = scores.reshape(-1, scores.shape[-1])
        if (
            target.dim() == scores.dim()
            and target.shape[-1] == scores.shape[-1]
            and target.dim() > 1
        ):
            target = target.argmax(-1)  # one-hot
        target = target.reshape(-1).long()
        k = min(self.k, scores.shape[-1])
        top = scores.topk(k, dim=-1).indices
        self.hits += int((top == target.unsqueeze(-1)).any(dim=-1).sum())
        self.seen += int(target.numel())

    def result(self) -> float:
        return self.hits / self.seen if self.seen else 0.0


class Accuracy(TopK):
    """Top-1 accuracy for class scores; exact-match rate when predictions are labels."""

    def __init__(self) -> None:
        super().__init__(1)

    def update(self, preds: Any, labels: Any) -> None:
        scores = torch.as_tensor(prediction(preds)).detach().cpu()
        target = torch.as_tensor(labels).detach().cpu()
        if scores.shape == target.shape:  # already labels
            self.hits += int((scores == target).sum())
            self.seen += int(target.numel())
            return
        super().update(scores, target)


class _Regression(_Metric):
    higher_is_better = False

    def reset(self) -> None:
        self.total = 0.0
        self.seen = 0

    def __init__(self) -> None:
        self.reset()

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, preds: Any, labels: Any) -> None:
        pred = torch.as_tensor(prediction(preds)).detach().float().cpu()
        target = torch.as_tensor(labels).detach().float().cpu().reshape(pred.shape)
        self.total += float(self._error(pred - target).sum())
        self.seen += int(target.numel())

    def result(self) -> float:
        return self.total / self.seen if self.seen else 0.0


class MSE(_Regression):
    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.square()


class MAE(_Regression):
    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


class RMSE(MSE):
    def result(self) -> float:
        return math.sqrt(super().result())


_BUILTIN: dict[str, Callable[[Any], _Metric]] = {
    "topk": lambda arg: TopK(int(arg)),
    "accuracy": lambda arg: Accuracy(),
    "mse": lambda arg: MSE(),
    "mae": lambda arg: MAE(),
    "rmse": lambda arg: RMSE(),
}


def build_metric(eval_metric: Any) -> Any:
    """A metric object from INC's `eval_metric` forms (spec 5, step 4).

    An object with `reset` / `update` / `result` is used as is; INC's
    `Metric(metric_cls=..., name=..., **kwargs)` is instantiated; a dict names one
    built-in metric: `{'topk': k}`, `{'Accuracy': {}}`, `{'MSE': {}}`, `{'MAE': {}}`,
    `{'RMSE': {}}` (several metrics with weights are refused).
    """
    if all(hasattr(eval_metric, a) for a in ("reset", "update", "result")):
        return eval_metric
    metric_cls = getattr(eval_metric, "metric_cls", None)
    if metric_cls is not None:
        kwargs = getattr(eval_metric, "kwargs", None) or {}
        return build_metric(metric_cls(**kwargs))
    if isinstance(eval_metric, Mapping):
        names = [k for k in eval_metric if k not in ("weight", "higher_is_better")]
        if len(names) != 1:
            raise ValueError(
                f"eval_metric {dict(eval_metric)!r}: exactly one built-in metric is supported "
                f"({', '.join(sorted(_BUILTIN))}); for several, pass eval_func="
            )
        name = names[0]
        factory = _BUILTIN.get(str(name).lower())
        if factory is None:
            raise ValueError(
                f"unknown built-in metric {name!r}; available: {', '.join(sorted(_BUILTIN))} "
                "(or pass an object with reset/update/result)"
            )
        return factory(eval_metric[name])
    raise TypeError(
        "eval_metric must be an object with reset/update/result, INC's Metric(...) or a "
        f"dict such as {{'topk': 1}}, got {type(eval_metric).__name__}"
    )


def make_eval_func(eval_dataloader: Any, eval_metric: Any) -> Callable[[nn.Module], float]:
    """INC's built evaluation: run the loader, `metric.update(prediction, labels)`, `result()`."""
    metric = build_metric(eval_metric)

    def evaluate(model: nn.Module) -> float:
        metric.reset()
        device = model_device(model)
        was_training = model.training
        model.eval()
        total = len(eval_dataloader) if hasattr(eval_dataloader, "__len__") else None
        try:
            with torch.no_grad(), Progress(total, "evaluating", unit="batch") as bar:
                for batch in eval_dataloader:
                    inputs, labels = split_batch(batch)
                    output = call_model(model, to_device(inputs, device))
                    metric.update(prediction(output), labels)
                    bar.update()
        finally:
            model.train(was_training)
        value = metric.result()
        if isinstance(value, (list, tuple)):
            value = value[0]
        return float(value)

    return evaluate
