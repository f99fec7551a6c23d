"""Post-training quantization: fp32 vs int8 static vs int8 dynamic, and `fit` vs the bare backend.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_ptq.py [--quick]

Models: a small CNN (conv-bn-relu blocks + linear head, 3x32x32 input) and a
small BERT built from a config (no download). For each, one table:

* latency ratio (median batch time / fp32's) and model size ratio (serialized
  state dict / fp32's) of the int8 static and int8 dynamic models from
  `quantization.fit`;
* `fit` against calling the backends directly: the time `fit` takes to quantize
  once (no evaluation) against the runtime's backend (`get_backend()
  .quantize_static / quantize_dynamic`) and against bare torch.ao doing the same
  quantization (`prepare_fx` / calibrate / `convert_fx`, and `fuse_fx` (it folds
  BatchNorms into convs, as `fit` does; skipped where FX cannot trace) then
  `quantize_dynamic`, with the qconfig `fit` uses by default: per-channel
  symmetric int8 weights, min-max uint8 activations, embeddings int8 weight-only
  (torch.ao's `float_qparams_weight_only_qconfig`)); for BERT, which FX cannot
  trace, the bare static call is the runtime backend's eager path. "summary sizes" is the time of the
  two size measurements of the run summary (`summary.state_dict_size` of the
  fp32 and the int8 model), which `fit` does on every call whose summary is shown.
  The bench quiets the runtime logger, so the summary is shown nowhere and "fit"
  does not measure it; "shown/backend" is `fit` with the logger at INFO (a script
  that does not configure logging), summary measured and formatted. The goal for
  fit/bare is <= 1.03;
* the inference latency of `fit`'s model (called through its `Model` wrapper)
  over the bare int8 model's. The goal is <= 1.03.

One thread; times are the CPU time of that thread (`time.thread_time`: waiting
for a core that another process holds does not count); the functions compared
take turns, in a shuffled order, in one process, and a ratio is the median of
the per-turn ratios, so what load from other processes remains hits both sides
alike. The `bare/bare` and `control` columns compare a function with itself:
they show the noise left.
"""

from __future__ import annotations

import copy
import functools
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig
from neural_coder.runtime.quant import QuantSpec, get_backend
from neural_coder.runtime.quant.torch_ao import resolve_reduce_range
from neural_coder.runtime.summary import state_dict_size

QUICK = "--quick" in sys.argv
torch.manual_seed(0)
torch.set_num_threads(1)
# quiet: a handler of our own keeps the runtime from installing its INFO stderr handler
logging.getLogger("neural_coder.runtime").addHandler(logging.NullHandler())
logging.getLogger("neural_coder.runtime").setLevel(logging.WARNING)
#: turns of the compared functions (a ratio is the median of the per-turn ratios)
LATENCY_TURNS = 31 if QUICK else 201
STATIC_TURNS = 7 if QUICK else 61
DYNAMIC_TURNS = 15 if QUICK else 101
CALIB_BATCHES = 4


# -- models ----------------------------------------------------------------------------
class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, 32),
            *block(32, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            *block(64, 64),
            nn.MaxPool2d(2),
            *block(64, 128),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cnn() -> tuple[nn.Module, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    g = torch.Generator().manual_seed(1)
    return model, [torch.randn(16, 3, 32, 32, generator=g) for _ in range(CALIB_BATCHES)]


def bert() -> tuple[nn.Module, list[dict[str, torch.Tensor]]]:
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=1000,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(config).eval()
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(CALIB_BATCHES):
        ids = torch.randint(1, 1000, (8, 64), generator=g)
        # token types given: torch's own int8 embedding (the bare models') refuses the
        # expanded view BERT makes when they are not
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    return model, batches


def run(model: Callable[..., Any], batch: Any) -> Any:
    return model(**batch) if isinstance(batch, dict) else model(batch)


# -- timing --------------------------------------------------------------------------------
class Timings:
    """Per-turn times of functions that took turns. A ratio is the median of the per-turn
    ratios: both sides of a pair ran within the same few milliseconds, so load from
    other processes mostly cancels."""

    def __init__(self, samples: dict[str, list[float]]) -> None:
        self.samples = samples

    def __getitem__(self, key: str) -> float:
        return statistics.median(self.samples[key])

    def ratio(self, key: str, base: str) -> float:
        pairs = zip(self.samples[key], self.samples[base], strict=True)
        return statistics.median(a / b for a, b in pairs)


def alternate(fns: dict[str, Callable[[], Any]], turns: int, reps: int) -> Timings:
    """`turns` turns; in each, `reps` calls of every function, in a shuffled order (a
    function that always ran after the same other one would inherit its cache state)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    shuffle = random.Random(0).shuffle
    with torch.no_grad():
        for fn in fns.values():  # warm-up
            fn()
            fn()
        for _ in range(turns):
            order = list(fns.items())
            shuffle(order)
            for key, fn in order:
                start = time.thread_time()
                for _ in range(reps):
                    fn()
                samples[key].append((time.thread_time() - start) / reps)
    return Timings(samples)


# -- bare backends ------------------------------------------------------------------------------
def _same_qconfig(dynamic: bool = False) -> Any:
    """The qconfig the runtime uses by default (INC's: per-channel symmetric int8 weights,
    min-max uint8 activations, reduce_range where the CPU has no VNNI), spelled in
    torch.ao, so that the bare calls build the same int8 model as `fit`."""
    from torch.ao.quantization import (
        MinMaxObserver,
        QConfig,
        default_per_channel_weight_observer,
        per_channel_dynamic_qconfig,
    )

    if dynamic:
        return per_channel_dynamic_qconfig
    qmax = 127 if resolve_reduce_range(QuantSpec(approach="static")) else 255
    activation = MinMaxObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=qmax)
    return QConfig(activation=activation, weight=default_per_channel_weight_observer)


def bare_static_fx(model: nn.Module, batches: list[Any]) -> nn.Module:
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    work = copy.deepcopy(model).eval()
    mapping = QConfigMapping().set_global(_same_qconfig())
    prepared = prepare_fx(work, mapping, (batches[0],))
    with torch.no_grad():
        for batch in batches:
            run(prepared, batch)
    return convert_fx(prepared)


def bare_static_backend(model: nn.Module, batches: list[Any]) -> nn.Module:
    def calibrate(prepared: nn.Module) -> None:
        for batch in batches:
            run(prepared, batch)

    return get_backend().quantize_static(model, QuantSpec(approach="static"), calibrate)


def backend_dynamic(model: nn.Module, batches: list[Any]) -> nn.Module:
    return get_backend().quantize_dynamic(model, QuantSpec(approach="dynamic"))


def bare_dynamic(model: nn.Module, batches: list[Any]) -> nn.Module:
    """torch's quantize_dynamic; where FX traces the model, after `fuse_fx` (which folds
    BatchNorms into convs, as `fit` does)."""
    from torch.ao.quantization import quantize_dynamic
    from torch.ao.quantization.quantize_fx import fuse_fx

    torch.backends.quantized.engine = "x86"
    work = copy.deepcopy(model).eval()
    try:
        work = fuse_fx(work)
    except Exception:  # Hugging Face models do not trace
        pass
    from torch.ao.quantization import float_qparams_weight_only_qconfig

    qconfig = {
        nn.Linear: _same_qconfig(dynamic=True),
        nn.Embedding: float_qparams_weight_only_qconfig,  # fit quantizes embeddings weight-only
    }
    return quantize_dynamic(work, qconfig, dtype=torch.qint8)


def fit_static(model: nn.Module, batches: list[Any]) -> nn.Module:
    loader = DataLoader(batches, batch_size=None)  # each item is already a batch
    size = CALIB_BATCHES * (
        len(batches[0]["input_ids"]) if isinstance(batches[0], dict) else len(batches[0])
    )
    conf = PostTrainingQuantConfig(approach="static", calibration_sampling_size=size)
    return quantization.fit(model, conf, calib_dataloader=_Sized(loader, size // CALIB_BATCHES))


def fit_dynamic(model: nn.Module, batches: list[Any]) -> nn.Module:
    return quantization.fit(model, PostTrainingQuantConfig(approach="dynamic"))


def summary_shown(fit: Callable[..., Any]) -> Callable[..., Any]:
    """`fit` with its run summary shown: the runtime logger at INFO, as in a script that
    does not configure logging (the records go to the NullHandler above). With the
    logger quiet and no $NEURAL_CODER_SUMMARY / $NEURAL_CODER_REPORT, `fit` does not
    measure the summary, which nobody would see. The two `setLevel` calls are timed with
    it (15-30 us: each clears the cache of every logger)."""

    def shown(model: nn.Module, batches: list[Any]) -> Any:
        logger = logging.getLogger("neural_coder.runtime")
        logger.setLevel(logging.INFO)
        try:
            return fit(model, batches)
        finally:
            logger.setLevel(logging.WARNING)

    return shown


class _Sized:
    """A loader of ready batches with the batch size `fit` computes calibration from."""

    def __init__(self, loader: DataLoader, batch_size: int) -> None:
        self.loader = loader
        self.batch_size = batch_size

    def __iter__(self):  # noqa: ANN204
        return iter(self.loader)


# -- report --------------------------------------------------------------------------------
def bench(
    name: str, make: Callable[[], tuple[nn.Module, list[Any]]], bare_static: Callable
) -> None:
    model, batches = make()
    x = batches[0]
    static = fit_static(model, batches)
    dynamic = fit_dynamic(model, batches)
    assert static is not None and dynamic is not None
    bare_s = bare_static(model, batches)
    bare_d = bare_dynamic(model, batches)

    # one call per turn: the two sides of a ratio run milliseconds apart
    latency = alternate(
        {
            "fp32": lambda: run(model, x),
            "static": lambda: run(static, x),
            "bare static": lambda: run(bare_s, x),
            "dynamic": lambda: run(dynamic, x),
            "bare dynamic": lambda: run(bare_d, x),
            "bare dynamic again": lambda: run(bare_d, x),
        },
        LATENCY_TURNS,
        1,
    )
    quantize: dict[str, Timings] = {}
    for kind, turns in (("static", STATIC_TURNS), ("dynamic", DYNAMIC_TURNS)):
        fit, backend, bare = (
            (fit_static, bare_static_backend, bare_static)
            if kind == "static"
            else (fit_dynamic, backend_dynamic, bare_dynamic)
        )
        quantize[kind] = alternate(
            {
                "fit": functools.partial(fit, model, batches),
                "fit, summary shown": functools.partial(summary_shown(fit), model, batches),
                "backend": functools.partial(backend, model, batches),
                "bare": functools.partial(bare, model, batches),
                "bare again": functools.partial(bare, model, batches),
            },
            turns,
            1,
        )
    sizing = alternate(
        {
            "static": lambda: (state_dict_size(model), state_dict_size(static.model)),
            "dynamic": lambda: (state_dict_size(model), state_dict_size(dynamic.model)),
        },
        LATENCY_TURNS,
        1,
    )
    size = {
        "fp32": state_dict_size(model),
        "static": state_dict_size(static.model),
        "dynamic": state_dict_size(dynamic.model),
    }
    path = static.q_config["path"]
    print(f"\n{name}: batch {tuple(_first(x).shape)}, static path: {path}, 1 thread")
    print(f"  {'model':<14}{'latency ms':>11}{'vs fp32':>9}{'size KiB':>10}{'vs fp32':>9}")
    for key in ("fp32", "static", "dynamic"):
        print(
            f"  {key:<14}{latency[key] * 1e3:>11.3f}{latency.ratio(key, 'fp32'):>9.2f}"
            f"{size[key] / 1024:>10.1f}{size[key] / size['fp32']:>9.2f}"
        )
    bare_name = "torch.ao FX" if bare_static is bare_static_fx else "the runtime backend (eager)"
    print(
        f"  quantize once, ms (bare static = {bare_name}; bare dynamic = torch fuse_fx + "
        "quantize_dynamic; same qconfig as fit)"
    )
    print(
        f"    {'':<8}{'fit':>9}{'backend':>9}{'bare':>9}{'fit/backend':>13}{'fit/bare':>10}"
        f"{'bare/bare':>11}{'summary sizes':>15}{'shown/backend':>15}"
    )
    for kind, t in quantize.items():
        print(
            f"    {kind:<8}{t['fit'] * 1e3:>9.1f}{t['backend'] * 1e3:>9.1f}{t['bare'] * 1e3:>9.1f}"
            f"{t.ratio('fit', 'backend'):>13.3f}{t.ratio('fit', 'bare'):>10.3f}"
            f"{t.ratio('bare again', 'bare'):>11.3f}{sizing[kind] * 1e3:>15.2f}"
            f"{t.ratio('fit, summary shown', 'backend'):>15.3f}"
        )
    print(
        "  inference, fit's model (through its Model wrapper) over the bare int8 model "
        "(goal <= 1.03)"
    )
    for kind in ("static", "dynamic"):
        print(f"    {kind:<8}{latency.ratio(kind, 'bare ' + kind):>9.3f}")
    control = latency.ratio("bare dynamic again", "bare dynamic")
    print(f"    {'control (the bare dynamic model against itself)':<8}{control:>9.3f}")


def _first(batch: Any) -> torch.Tensor:
    return batch["input_ids"] if isinstance(batch, dict) else batch


if __name__ == "__main__":
    bench("cnn", cnn, bare_static_fx)
    bench("bert", bert, bare_static_backend)
