"""The candidates `auto` tries, and the two texts each one needs.

- the *final* text: exactly what `optimize --approach <candidate>` writes (the
  fp32 candidate has none: it is the script as it is);
- the *measuring* text: the final text plus a `benchmark.fit` call at the place
  where the rewrite's model is in use, on the script's own evaluation or
  calibration data. Both planners place their call before the script's first
  evaluation (or after training), so the benchmark times the model the rest of
  the script uses: the quantized one, or the fp32 one when `fit` returned None.
  For fp32 the measuring text is `optimize --approach benchmark`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from neural_coder.analysis import analyze, parse_source
from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.files import line_length_for
from neural_coder.options import OptimizeOptions, PTQOptions, build_options
from neural_coder.planning import make_plan
from neural_coder.transforms.hooks import apply_edits
from neural_coder.verify import verify_rewrite

FP32 = "fp32"
DEFAULT_APPROACHES = ("ptq-dynamic", "ptq-static", "bf16")
ALLOWED_APPROACHES = ("ptq-dynamic", "ptq-static", "ptq-auto", "bf16")


@dataclass
class Candidate:
    name: str
    final_text: str | None = None  # None for fp32: the script as it is
    measuring_text: str | None = None
    #: why it is not run: "refused" (the engine), "skipped" (this machine)
    status: str = "pending"
    reason: str = ""


def options_for(approach: str, ptq: PTQOptions) -> OptimizeOptions:
    return replace(build_options(approach, "runtime", {}, {}), ptq=ptq)


def bf16_unavailable() -> str | None:
    """Why this CPU does not compute bf16 natively, or None when it does."""
    from neural_coder.runtime.cpu import BF16_FLAGS, cpu_info  # the runtime imports torch

    info = cpu_info()
    if info.native_bf16:
        return None
    return (
        f"this CPU ({info.model_name or 'unknown'}) has none of {', '.join(BF16_FLAGS)}: "
        "bf16 would be emulated, slower than fp32"
    )


def measuring_source(path: Path, text: str, options: OptimizeOptions | None) -> str:
    """`text` rewritten for `options` (None: as it is) with a benchmark call added."""
    source = parse_source(path, text)
    facts = analyze(source)
    if facts.already_optimized is not None:
        raise NeuralCoderError(
            f"already compressed (compression code at line {facts.already_optimized})",
            path=path,
            line=facts.already_optimized,
            hint=f"run `neural-coder revert {path}` first; auto starts from the original script",
        )
    length = line_length_for(path)
    bench = build_options("benchmark", "runtime", {}, {})
    edits = [] if options is None else list(make_plan(facts, options, length).edits)
    edits += make_plan(facts, bench, length).edits
    rewritten = apply_edits(source.module, edits).code
    verify_rewrite(path, source.module, rewritten)
    return rewritten


def build_candidates(
    path: Path, text: str, approaches: tuple[str, ...], ptq: PTQOptions
) -> list[Candidate]:
    """fp32 first, then each approach; a refusal is kept with its reason."""
    fp32 = Candidate(FP32)
    try:
        fp32.measuring_text = measuring_source(path, text, None)
    except NeuralCoderError as error:
        fp32.status, fp32.reason = "refused", error.render()
    candidates = [fp32]
    for approach in approaches:
        candidate = Candidate(approach)
        candidates.append(candidate)
        if approach == "bf16":
            why = bf16_unavailable()
            if why is not None:
                candidate.status, candidate.reason = "skipped", why
                continue
        options = options_for(approach, ptq)
        try:
            candidate.final_text, _ = rewrite_source(path, text, options)
            candidate.measuring_text = measuring_source(path, text, options)
        except NeuralCoderError as error:
            candidate.status, candidate.reason = "refused", error.render()
    return candidates
