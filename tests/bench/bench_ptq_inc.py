"""Our `quantization.fit` against Intel Neural Compressor 2.6's `fit`, same models, same data.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_ptq_inc.py [--quick]
INC runs in its own environment: $NEURAL_CODER_INC_PYTHON, else .venv-inc/bin/python
(see tests/inc/README.md). When that environment has no `transformers`, the INC
process borrows this environment's copy (appended to its `sys.path`, so its own
numpy and torch still come first) and says so.

Models, trained here for a few seconds on synthetic tasks so that accuracy means
something: a small CNN (3x32x32 images, 10 classes, each a noisy copy of a class
template) and a small BERT built from `BertConfig` (sequences of random tokens, 4
classes: which of 4 marker tokens the sequence contains). This process trains
them, saves the weights and the calibration / evaluation data with `torch.save`,
runs our `fit`, then starts the INC process on the same file; both build the
models from the same code, load the same weights and use the same loaders and
evaluation function, with the same seeds.

Cases per model: `static` and `dynamic`, each quantized once without an
evaluation, then with `eval_func` (accuracy-aware tuning) under INC's default
criterion (1 % relative loss) and under a strict one (no loss, absolute), with
the same `max_trials` on both sides. Measured, with one thread:

* time to quantize: wall time of the `fit` call (tuning included), each side in
  its own process, after an untimed warm-up `fit`;
* trials: calls of `eval_func` after the fp32 baseline;
* accuracy of the result on the evaluation set, next to fp32's;
* quantized latency, side by side in one process: our model is saved with
  `Model.save` and loaded with our `load` in the INC process (after INC ran; our
  runtime only needs torch), then fp32, ours and INC's run one evaluation batch in
  turns (shuffled order, thread CPU time; a ratio is the median of the per-turn
  ratios). INC's model cannot come this way: INC leaves a local hook on quantized
  embeddings, which pickling refuses;
* int8 modules: modules whose class is a torch.ao quantized one;
* model size: the bytes `torch.save(model.state_dict())` writes, ours, INC's and
  fp32's, and each int8 one as a fraction of fp32 (4 decimals); also for an untrained
  BERT-mini (30522-word vocabulary, 4 layers, hidden 256), quantized once per approach.

Anything INC does not do (an exception, None) is recorded with its message, and
the log lines that say how each side quantized (INC's sub-module tracing of a
Hugging Face model, our eager path, fallbacks) are printed under the table.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

QUICK = "--quick" in sys.argv
ROOT = Path(__file__).resolve().parents[2]
MAX_TRIALS = 10
LATENCY_TURNS = 21 if QUICK else 61
#: tuning: None (quantize once), "1%" (INC's default criterion: 1 % relative loss) or
#: "strict" (no loss at all, absolute: fallbacks to fp32 are needed where int8 loses any)
CASES = [
    {"approach": approach, "tune": tune}
    for tune in (None, "1%", "strict")
    for approach in ("static", "dynamic")
]
SETTINGS = {
    # 60 steps: about 93 % accuracy, so int8 rounding can cost some (tuning has work)
    "cnn": {"calib": 64, "calib_batch": 16, "eval": 512, "eval_batch": 64, "train_steps": 60},
    "bert": {"calib": 32, "calib_batch": 8, "eval": 256, "eval_batch": 32, "train_steps": 150},
}
if QUICK:
    SETTINGS["bert"]["train_steps"] = 60
BERT_VOCAB, BERT_SEQ, MARKERS = 1000, 32, (5, 6, 7, 8)


# -- shared by both processes: no neural_coder / neural_compressor import here -----------
class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, 16),
            *block(16, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            nn.MaxPool2d(2),
            *block(64, 64),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "cnn":
        return SmallCNN()
    import transformers

    if kind == "bert-mini":  # Google's BERT-mini shape (4 layers, hidden 256), untrained
        return transformers.BertForSequenceClassification(
            transformers.BertConfig(
                hidden_size=256,
                num_hidden_layers=4,
                num_attention_heads=4,
                intermediate_size=1024,
                num_labels=len(MARKERS),
            )
        )

    config = transformers.BertConfig(
        vocab_size=BERT_VOCAB,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=64,
        num_labels=len(MARKERS),
    )
    return transformers.BertForSequenceClassification(config)


class Samples(Dataset):
    """(input, label) pairs of one split; BERT inputs are dicts (INC and our `fit` both
    take (input, label) batches)."""

    def __init__(self, data: dict[str, torch.Tensor], split: str) -> None:
        self.x, self.y = data[f"{split}_x"], data[f"{split}_y"]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor]:
        x = self.x[i]
        if x.dtype == torch.long:  # token ids
            return {"input_ids": x, "attention_mask": torch.ones_like(x)}, self.y[i]
        return x, self.y[i]


def loader(data: dict[str, torch.Tensor], split: str, batch_size: int) -> DataLoader:
    return DataLoader(Samples(data, split), batch_size=batch_size, shuffle=False)


def run(model: Callable[..., Any], inputs: Any) -> torch.Tensor:
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, dict):
        logits = out["logits"]
    if logits is None and isinstance(out, (tuple, list)):
        logits = out[0]
    return out if logits is None else logits


def evaluate(model: nn.Module, batches: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in batches:
            correct += int((run(model, inputs).argmax(-1) == labels).sum())
            total += len(labels)
    return correct / total


def saved_size(state: dict[str, Any]) -> int:
    """Bytes `torch.save` writes for a state dict (both sides measured the same way)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


def count_int8(model: nn.Module) -> int:
    """Modules that compute in int8: a class (or base class) from torch.ao's quantized
    packages, not a stub, a weight holder or a float "reference" module."""
    count = 0
    for module in model.modules():
        for cls in type(module).__mro__:
            name = cls.__module__ or ""
            if name.startswith("torch.ao.nn.quantized.reference") or cls.__name__ in (
                "Quantize",
                "DeQuantize",
                "FloatFunctional",
                "LinearPackedParams",
                "EmbeddingPackedParams",
            ):
                break
            if name.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")):
                count += 1
                break
    return count


def latency(models: dict[str, nn.Module], batch: Any) -> dict[str, Any]:
    """The models on one batch in turns (shuffled order), thread CPU time: median ms
    of each, and each one's median per-turn ratio to every other."""
    samples: dict[str, list[float]] = {k: [] for k in models}
    order = list(models.items())
    shuffle = random.Random(0).shuffle
    with torch.no_grad():
        for _, model in order * 2:
            run(model, batch)
        for _ in range(LATENCY_TURNS):
            shuffle(order)
            for key, model in order:
                start = time.thread_time()
                run(model, batch)
                samples[key].append(time.thread_time() - start)
    ratios = {
        f"{a}/{b}": statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))
        for a in models
        for b in models
        if a != b
    }
    return {"ms": {k: statistics.median(v) * 1e3 for k, v in samples.items()}, "ratios": ratios}


class Notes(logging.Handler):
    """Log lines that say how a library quantized (tracing, fallbacks, failures)."""

    PATTERN = re.compile(r"trac|fallback|fall back|fail|error|cannot|not supported|eager", re.I)
    IGNORED = re.compile(r"mpi4py")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip().splitlines()[0] if record.getMessage() else ""
        if self.IGNORED.search(text) or not text:
            return
        if record.levelno >= logging.WARNING or self.PATTERN.search(text):
            if text not in self.lines and len(self.lines) < 8:
                self.lines.append(text[:200])


def run_case(
    kind: str,
    case: dict[str, Any],
    saved: dict[str, Any],
    quantization: Any,
    config: Any,
    logger_name: str,
) -> dict[str, Any]:
    """One `fit` call of `quantization` (ours or INC's) with `config`'s classes."""
    settings = SETTINGS[kind]
    data = saved["data"]
    fp32 = build(kind)
    fp32.load_state_dict(saved["state_dict"])
    fp32.eval()
    model = build(kind)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    calib = loader(data, "calib", settings["calib_batch"])
    batches = loader(data, "eval", settings["eval_batch"])
    calls = [0]

    def eval_func(candidate: nn.Module) -> float:
        calls[0] += 1
        return evaluate(candidate, batches)

    criterion = (
        config.AccuracyCriterion(criterion="absolute", tolerable_loss=0.0)
        if case["tune"] == "strict"
        else config.AccuracyCriterion(tolerable_loss=0.01)
    )
    conf = config.PostTrainingQuantConfig(
        approach=case["approach"],
        calibration_sampling_size=[settings["calib"]],
        accuracy_criterion=criterion,
        tuning_criterion=config.TuningCriterion(max_trials=MAX_TRIALS),
    )
    notes = Notes()
    logging.getLogger(logger_name).addHandler(notes)
    result: dict[str, Any] = {"error": None, "notes": notes.lines}
    began = time.perf_counter()
    try:
        q = quantization.fit(
            model,
            conf,
            calib_dataloader=calib if case["approach"] == "static" else None,
            eval_func=eval_func if case["tune"] else None,
        )
    except Exception as exc:  # record what the library does
        q = None
        result["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        result["traceback"] = traceback.format_exc()[-2000:]
    finally:
        logging.getLogger(logger_name).removeHandler(notes)
    result["seconds"] = time.perf_counter() - began
    result["trials"] = max(0, calls[0] - 1) if case["tune"] else 0
    result["fp32_accuracy"] = evaluate(fp32, batches)
    int8 = getattr(q, "model", None)
    if int8 is None:
        result["returned"] = "None" if result["error"] is None else "exception"
        return result
    result["returned"] = "model"
    result["size_bytes"] = saved_size(int8.state_dict())
    result["fp32_size_bytes"] = saved_size(fp32.state_dict())
    result["accuracy"] = evaluate(int8, batches)
    result["int8_modules"] = count_int8(int8)
    result["model"] = q
    return result


def case_key(kind: str, case: dict[str, Any]) -> str:
    return f"{kind} {case['approach']} {'once' if case['tune'] is None else case['tune']}"


def run_all(saved: dict[str, Any], quantization: Any, config: Any, logger: str) -> dict:
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    for kind in ("cnn", "bert"):
        for approach in ("static", "dynamic"):  # untimed: first-use costs (imports, FX)
            warm = {"approach": approach, "tune": None}
            run_case(kind, warm, saved[kind], quantization, config, logger).pop("model", None)
        for case in CASES:
            key = case_key(kind, case)
            print(f"  {key} ...", file=sys.stderr, flush=True)
            results[key] = run_case(kind, case, saved[kind], quantization, config, logger)
    return results


def size_only(saved: dict[str, Any], quantization: Any, config: Any) -> dict[str, Any]:
    """BERT-mini (30522-word vocabulary: the embeddings are most of it), untrained,
    quantized once per approach (static calibrated on the small BERT's data): the
    sizes only, against the same model on the other side."""
    sizes: dict[str, Any] = {}
    fp32 = build("bert-mini").eval()
    settings = SETTINGS["bert"]
    calib = loader(saved["bert"]["data"], "calib", settings["calib_batch"])
    for approach in ("static", "dynamic"):
        model = build("bert-mini").eval()
        conf = config.PostTrainingQuantConfig(
            approach=approach, calibration_sampling_size=[settings["calib"]]
        )
        q = quantization.fit(model, conf, calib_dataloader=calib if approach == "static" else None)
        int8 = getattr(q, "model", None)
        sizes[f"bert-mini {approach} once"] = {
            "fp32_size_bytes": saved_size(fp32.state_dict()),
            "size_bytes": None if int8 is None else saved_size(int8.state_dict()),
        }
    return sizes


# -- the INC process ------------------------------------------------------------------------
def _our_runtime() -> Any:
    """This checkout's `neural_coder.runtime`, imported by path: INC's environment has a
    `neural_coder` package of its own (Intel's), which a plain import would find first."""
    import importlib
    import importlib.util

    for name in [m for m in sys.modules if m == "neural_coder" or m.startswith("neural_coder.")]:
        del sys.modules[name]
    # the package folders as setuptools maps them: neural_coder -> coder/, its runtime ->
    # runtime/ (found through the second search location)
    spec = importlib.util.spec_from_file_location(
        "neural_coder",
        ROOT / "coder" / "__init__.py",
        submodule_search_locations=[str(ROOT / "coder"), str(ROOT)],
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["neural_coder"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("neural_coder.runtime")


def worker(data_path: str, out_path: str, site_dir: str, ours_dir: str) -> None:
    import site

    try:
        import transformers  # noqa: F401

        borrowed = False
    except ImportError:
        sys.path.append(site_dir)
        borrowed = True
    import neural_compressor
    from neural_compressor import config, quantization

    logging.getLogger("neural_compressor").setLevel(logging.INFO)
    saved = torch.load(data_path, weights_only=True)
    results = run_all(saved, quantization, config, "neural_compressor")
    sizes = size_only(saved, quantization, config)

    # our int8 models, saved by the other process, loaded here with our runtime (its
    # editable install made importable after INC ran) for side-by-side latency
    site.addsitedir(site_dir)
    load = _our_runtime().load

    for key, result in results.items():
        inc_model = result.pop("model", None)
        folder = Path(ours_dir) / key.replace(" ", "_")
        if not folder.exists():
            continue
        kind = key.split()[0]
        fp32 = build(kind)
        fp32.load_state_dict(saved[kind]["state_dict"])
        fp32.eval()
        ours = load(str(folder), fp32)
        batches = loader(saved[kind]["data"], "eval", SETTINGS[kind]["eval_batch"])
        result["ours_accuracy_here"] = evaluate(ours, batches)
        models = {"fp32": fp32, "ours": ours}
        if inc_model is not None:
            models["INC"] = inc_model.model
        result["latency"] = latency(models, next(iter(batches))[0])
    meta = {"version": neural_compressor.__version__, "transformers_borrowed": borrowed}
    document = {"meta": meta, "results": results, "sizes": sizes}
    Path(out_path).write_text(json.dumps(document, indent=1))


# -- this process ------------------------------------------------------------------------------
def make_data(kind: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    sizes = {"train": 2048, "calib": SETTINGS[kind]["calib"], "eval": SETTINGS[kind]["eval"]}
    data: dict[str, torch.Tensor] = {}
    if kind == "cnn":
        low = torch.randn(10, 3, 8, 8, generator=g)
        templates = nn.functional.interpolate(low, size=32, mode="bilinear")
        for split, n in sizes.items():
            y = torch.randint(0, 10, (n,), generator=g)
            data[f"{split}_x"] = templates[y] + 1.5 * torch.randn(n, 3, 32, 32, generator=g)
            data[f"{split}_y"] = y
        return data
    markers = torch.tensor(MARKERS)
    for split, n in sizes.items():
        ids = torch.randint(len(MARKERS) + 5, BERT_VOCAB, (n, BERT_SEQ), generator=g)
        # two markers; the label is the type of the first one
        y = torch.randint(0, len(MARKERS), (n,), generator=g)
        other = torch.randint(0, len(MARKERS), (n,), generator=g)
        where = torch.stack([torch.randperm(BERT_SEQ - 1, generator=g)[:2] + 1 for _ in range(n)])
        first, second = where.min(1).values, where.max(1).values
        ids[torch.arange(n), first] = markers[y]
        ids[torch.arange(n), second] = markers[other]
        data[f"{split}_x"], data[f"{split}_y"] = ids, y
    return data


def train(kind: str, data: dict[str, torch.Tensor]) -> nn.Module:
    model = build(kind)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3 if kind == "cnn" else 1e-3)
    g = torch.Generator().manual_seed(2)
    x, y = data["train_x"], data["train_y"]
    for _ in range(SETTINGS[kind]["train_steps"]):
        index = torch.randint(0, len(y), (32,), generator=g)
        inputs = x[index]
        if kind == "bert":
            inputs = {"input_ids": inputs, "attention_mask": torch.ones_like(inputs)}
        loss = nn.functional.cross_entropy(run(model, inputs), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def inc_python() -> str:
    path = os.environ.get("NEURAL_CODER_INC_PYTHON") or str(ROOT / ".venv-inc" / "bin" / "python")
    if not Path(path).exists():
        sys.exit(f"no INC environment at {path}: bash tools/make_inc_env.sh .venv-inc")
    return path


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(
    ours: dict[str, Any],
    inc: dict[str, Any],
    meta: dict[str, Any],
    sizes: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
) -> None:
    borrowed = " (transformers borrowed from .venv)" if meta["transformers_borrowed"] else ""
    print(
        f"\nours (neural_coder.runtime) vs INC {meta['version']}{borrowed}; 1 thread; "
        f"max_trials {MAX_TRIALS}; tuning '1%': 1 % relative loss, 'strict': none (absolute)"
    )
    print(
        f"{'':<20}{'quantize, s':>25}{'trials':>9}{'accuracy':>22}"
        f"{'latency, ms (one process)':>27}{'ours/INC':>9}{'int8 modules':>14}"
    )
    print(
        f"{'case':<20}{'ours':>8}{'INC':>8}{'INC/ours':>9}{'ours':>5}{'INC':>4}"
        f"{'fp32':>8}{'ours':>7}{'INC':>7}{'fp32':>9}{'ours':>9}{'INC':>9}{'latency':>9}"
        f"{'ours':>7}{'INC':>7}"
    )
    for key, a in ours.items():
        b = inc.get(key, {})
        lat = b.get("latency") or {"ms": {}, "ratios": {}}
        ms, ratios = lat["ms"], lat["ratios"]
        time_ratio = b["seconds"] / a["seconds"] if b.get("seconds") else None
        print(
            f"{key:<20}{a['seconds']:>8.2f}{_fmt(b.get('seconds'), '.2f'):>8}"
            f"{_fmt(time_ratio, '.1f'):>9}{a['trials']:>5}{_fmt(b.get('trials'), 'd'):>4}"
            f"{a['fp32_accuracy']:>8.3f}{_fmt(a.get('accuracy'), '.3f'):>7}"
            f"{_fmt(b.get('accuracy'), '.3f'):>7}"
            f"{_fmt(ms.get('fp32'), '.2f'):>9}{_fmt(ms.get('ours'), '.2f'):>9}"
            f"{_fmt(ms.get('INC'), '.2f'):>9}{_fmt(ratios.get('ours/INC'), '.2f'):>9}"
            f"{_fmt(a.get('int8_modules'), 'd'):>7}{_fmt(b.get('int8_modules'), 'd'):>7}"
        )
    print(
        "\nint8 model size: torch.save(model.state_dict()) in bytes, and as a fraction of "
        "fp32's (same model, same serialisation)"
    )
    print(
        f"{'case':<20}{'fp32 bytes':>12}{'ours bytes':>12}{'INC bytes':>12}"
        f"{'ours/fp32':>11}{'INC/fp32':>10}{'ours-INC bytes':>16}"
    )
    for key, a in {**ours, **sizes[0]}.items():
        b = {**inc, **sizes[1]}.get(key, {})
        fp32, mine, theirs = a.get("fp32_size_bytes"), a.get("size_bytes"), b.get("size_bytes")
        print(
            f"{key:<20}{_fmt(fp32, 'd'):>12}{_fmt(mine, 'd'):>12}{_fmt(theirs, 'd'):>12}"
            f"{_fmt(mine / fp32 if mine and fp32 else None, '.4f'):>11}"
            f"{_fmt(theirs / fp32 if theirs and fp32 else None, '.4f'):>10}"
            f"{_fmt(mine - theirs if mine and theirs else None, '+d'):>16}"
        )
    mismatched = [
        key
        for key, a in ours.items()
        if a.get("accuracy") is not None
        and inc.get(key, {}).get("ours_accuracy_here") not in (None, a["accuracy"])
    ]
    if mismatched:
        print(f"our models reloaded in the INC process evaluate differently: {mismatched}")
    print("\nwhat each side said or did:")
    for key, a in ours.items():
        b = inc.get(key, {})
        for side, r in (("ours", a), ("INC", b)):
            lines = list(r.get("notes") or [])
            if r.get("error"):
                lines.insert(0, f"raised {r['error']}")
            elif r.get("returned") == "None":
                lines.insert(0, "returned None")
            for line in lines[:3]:
                print(f"  {key:<20} {side:<5} {line}")


def main() -> None:
    import transformers

    from neural_coder.runtime import config, quantization

    torch.set_num_threads(1)
    logging.getLogger("neural_coder.runtime").addHandler(logging.NullHandler())
    logging.getLogger("neural_coder.runtime").setLevel(logging.INFO)
    saved: dict[str, Any] = {}
    for kind in ("cnn", "bert"):
        began = time.perf_counter()
        data = make_data(kind)
        model = train(kind, data)
        accuracy = evaluate(model, loader(data, "eval", 64))
        print(
            f"trained {kind} in {time.perf_counter() - began:.1f}s: eval accuracy {accuracy:.3f}",
            file=sys.stderr,
        )
        data = {k: v for k, v in data.items() if not k.startswith("train")}
        saved[kind] = {"state_dict": model.state_dict(), "data": data}
    with tempfile.TemporaryDirectory(prefix="bench-ptq-inc-") as tmp:
        data_path, out_path = Path(tmp) / "data.pt", Path(tmp) / "inc.json"
        torch.save(saved, data_path)
        print("ours:", file=sys.stderr)
        ours = run_all(saved, quantization, config, "neural_coder.runtime")
        our_sizes = size_only(saved, quantization, config)
        for key, result in ours.items():
            q = result.pop("model", None)
            if q is not None:
                q.save(str(Path(tmp) / "ours" / key.replace(" ", "_")))
        print("INC:", file=sys.stderr)
        site_dir = str(Path(transformers.__file__).parents[1])
        command = [inc_python(), __file__, "--worker", str(data_path), str(out_path), site_dir]
        with open(Path(tmp) / "inc.log", "w") as log:
            done = subprocess.run(
                [*command, str(Path(tmp) / "ours")],
                cwd=tmp,  # INC writes its nc_workspace/ here
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=3600,
            )
        if done.returncode != 0 or not out_path.exists():
            tail = (Path(tmp) / "inc.log").read_text()[-4000:]
            sys.exit(f"the INC process failed (exit {done.returncode}):\n{tail}")
        inc = json.loads(out_path.read_text())
    report(ours, inc["results"], inc["meta"], (our_sizes, inc["sizes"]))


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:6])
    else:
        main()
