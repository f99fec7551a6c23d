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


def _refusal(error: NeuralCoderError) -> tuple[str, str]:
    return "refused", error.render()


def build_candidates(
    path: Path, text: str, approaches: tuple[str, ...], ptq: PTQOptions
) -> list[Candidate]:
    """fp32 first, then each approach; a refusal is kept with its reason.

    The script is parsed and analysed once; each candidate's plan comes from those
    facts, as `optimize` makes it, so the final text is what `optimize` writes."""
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
    fp32 = Candidate(FP32)
    candidates = [fp32]
    try:
        bench_edits = list(
            make_plan(facts, build_options("benchmark", "runtime", {}, {}), length).edits
        )
        fp32.measuring_text = apply_edits(source.module, bench_edits).code
    except NeuralCoderError as error:
        fp32.status, fp32.reason = _refusal(error)
        bench_edits = []
    for approach in approaches:
        candidate = Candidate(approach)
        candidates.append(candidate)
        if approach == "bf16":
            why = bf16_unavailable()
            if why is not None:
                candidate.status, candidate.reason = "skipped", why
                continue
        try:
            edits = list(make_plan(facts, options_for(approach, ptq), length).edits)
            candidate.final_text = apply_edits(source.module, edits).code
            verify_rewrite(path, source.text, candidate.final_text)
        except NeuralCoderError as error:
            candidate.status, candidate.reason = _refusal(error)
            continue
        if fp32.measuring_text is not None:
            # the benchmark call goes after the candidate's own call at the same place
            candidate.measuring_text = apply_edits(source.module, edits + bench_edits).code
        else:
            candidate.status, candidate.reason = "skipped", f"nothing to time it on: {fp32.reason}"
    return candidates
