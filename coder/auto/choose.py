"""Each candidate's figures (from the runtime's records) and the choice of the winner.

The winner is the candidate with the highest throughput among those whose accuracy
is within the goal against fp32; fp32 itself always qualifies. fp32's accuracy is
the baseline the candidates' `fit` measured with the script's own evaluation
before quantizing (the same eval_func, the same fp32 model). Without any accuracy
figure every measured candidate qualifies and `accuracy_checked` is False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .candidates import FP32
from .run import RunResult


@dataclass
class CandidateResult:
    name: str
    status: str = "pending"  # measured | refused | skipped | failed | no model
    reason: str = ""
    accuracy: float | None = None
    baseline: float | None = None  # fp32 accuracy as this candidate's fit measured it
    higher_is_better: bool = True
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None  # samples per second
    batch_size: int | None = None
    size_bytes: int | None = None
    seconds: float | None = None  # the whole run of the script
    tuning: str | None = None
    accuracy_change: float | None = None  # relative to fp32 (0.01 = +1 %)
    within_goal: bool | None = None
    speedup: float | None = None  # throughput / fp32 throughput
    final_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "accuracy": self.accuracy,
            "accuracy_change": self.accuracy_change,
            "within_goal": self.within_goal,
            "higher_is_better": self.higher_is_better,
            "latency_ms": {"p50": self.p50_ms, "p90": self.p90_ms, "p99": self.p99_ms},
            "throughput": self.throughput,
            "batch_size": self.batch_size,
            "size_bytes": self.size_bytes,
            "speedup": self.speedup,
            "seconds": self.seconds,
            "tuning": self.tuning,
        }


def figures_from(result: CandidateResult, run: RunResult) -> None:
    """Fill `result` from the run's records; a run without a benchmark record failed."""
    result.seconds = round(run.seconds, 3)
    fits = [r for r in run.records if r.get("kind") == "fit"]
    benches = [r for r in run.records if r.get("kind") == "benchmark"]
    if fits:
        fit = fits[-1]
        result.baseline = fit.get("baseline_metric")
        result.accuracy = fit.get("final_metric")
        result.higher_is_better = bool(fit.get("higher_is_better", True))
        result.tuning = fit.get("tuning") or fit.get("bf16_refused")
    if benches:
        bench = benches[-1]
        result.p50_ms, result.p90_ms, result.p99_ms = (
            bench.get("p50_ms"),
            bench.get("p90_ms"),
            bench.get("p99_ms"),
        )
        result.throughput = bench.get("throughput")
        result.batch_size = bench.get("batch_size")
        result.size_bytes = bench.get("size_bytes")
    if run.timed_out:
        result.status, result.reason = "failed", f"timed out after {run.seconds:.0f} s"
    elif run.returncode != 0:
        result.status = "failed"
        result.reason = f"the script exited with code {run.returncode}:\n{run.log_tail}"
    elif not benches:
        result.status = "failed"
        result.reason = "the script finished without reaching the benchmark call"
    elif result.name != FP32 and fits and _no_model(fits[-1]):
        result.status = "no model"
        result.reason = f"fit returned no model ({result.tuning}); the script kept fp32"
    else:
        result.status = "measured"


def _no_model(fit: dict[str, Any]) -> bool:
    """The fit returned None (its summary names no int8 approach and no bf16 precision)."""
    if "bf16_refused" in fit:
        return True
    return fit.get("precision") != "bf16" and fit.get("approach") is None


def within_goal(
    accuracy: float, baseline: float, higher_is_better: bool, criterion: str, tolerable: float
) -> bool:
    """The runtime's AccuracyCriterion rule (tuning.py), applied to the figures."""
    if criterion == "relative":
        bound = baseline * (1 - tolerable) if higher_is_better else baseline * (1 + tolerable)
    else:
        bound = baseline - tolerable if higher_is_better else baseline + tolerable
    return accuracy >= bound if higher_is_better else accuracy <= bound


def choose(
    results: list[CandidateResult], criterion: str, tolerable: float
) -> tuple[str | None, bool, float | None, str]:
    """(winner or None when fp32 stays, accuracy checked, fp32 accuracy, message)."""
    fp32 = next(r for r in results if r.name == FP32)
    baseline = next((r.baseline for r in results if r.baseline is not None), None)
    fp32.accuracy = baseline
    checked = baseline is not None
    for r in results:
        if r.status != "measured":
            continue
        if fp32.throughput and r.throughput:
            r.speedup = r.throughput / fp32.throughput
        if checked and r.accuracy is not None:
            r.accuracy_change = (r.accuracy - baseline) / abs(baseline) if baseline else None
            r.within_goal = within_goal(
                r.accuracy, baseline, r.higher_is_better, criterion, tolerable
            )
    if fp32.status != "measured":
        return None, checked, baseline, f"fp32 could not be measured: {fp32.reason}"
    eligible = [
        r
        for r in results
        if r.status == "measured"
        and r.throughput is not None
        and (r.name == FP32 or not checked or r.within_goal)
    ]
    best = max(eligible, key=lambda r: r.throughput or 0.0)
    goal = (
        f"within {tolerable:g} {criterion} accuracy loss"
        if checked
        else "accuracy not checked (the script has no evaluation the rewrite could use)"
    )
    if best.name == FP32:
        return None, checked, baseline, f"nothing beats fp32 ({goal}): the script is left as it is"
    return (
        best.name,
        checked,
        baseline,
        f"{best.name} is the fastest ({best.speedup or 0:.2f}x fp32 throughput, {goal})",
    )
