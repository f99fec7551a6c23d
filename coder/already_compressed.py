"""Scripts that already compress: the report when the tool's own code is there (the same
approach is a no-op, another is refused, `revert` gives the original back), when the
script's author compresses with a library (`analysis/own_compression.py`), and the
refusal to quantize a model the script quantizes with torch itself."""

from __future__ import annotations

from neural_coder.analysis import Facts, analyze, inserted_marker_line
from neural_coder.analysis.own_compression import OwnCompression
from neural_coder.analysis.source import Source
from neural_coder.analysis.user_quantization import QAT_ENTRY_POINTS
from neural_coder.errors import AnalysisError, NeuralCoderError
from neural_coder.options import OptimizeOptions
from neural_coder.planning.base import CONFIG_CLASSES
from neural_coder.report import FileReport, Status


def refuse_quantizing_twice(facts: Facts, options: OptimizeOptions) -> None:
    """QAT or a post-training quantization on a script that quantizes with torch itself
    would quantize (or train) an int8 model a second time; bf16 after the script's own
    QAT (`prepare_qat`) finds only fake-quantized modules, no float one to convert."""
    found = facts.user_quantization
    if found is None:
        return
    quantizing = [t for t in options.techniques if t == "qat" or t.startswith("ptq-")]
    trains_fake_quant = found.call.rsplit(".", 1)[-1] in QAT_ENTRY_POINTS
    if quantizing:
        why = f"{quantizing[0]} would quantize the model a second time"
        works = (
            "pruning and distillation" if trains_fake_quant else "pruning, distillation and bf16"
        )
    elif trains_fake_quant and "bf16" in options.techniques:
        why = "bf16 would find no float Linear / Conv to convert in the model it trains"
        works = "pruning and distillation"
    else:
        return
    raise AnalysisError(
        f"the script already quantizes with torch ({found.call} at line {found.line}): {why}",
        path=facts.source.path,
        line=found.line,
        hint=f"remove the call at line {found.line} (neural-coder inserts its own "
        f"quantization), then run again; {works} work as the script is",
    )


def already_compressed(
    source: Source, options: OptimizeOptions, facts: Facts | None = None
) -> FileReport:
    """The report of a script that compression code is already in; refused when the code
    is another approach's. Without `facts` (the tool's marker was found), analysis only
    fills the listing of what was found, and cannot make the run fail."""
    path, text = source.path, source.text
    if facts is None:
        try:
            facts = analyze(source)
        except Exception:  # noqa: BLE001 - the listing is a courtesy; the run stays a no-op
            facts = None
    report = FileReport(path=path, status=Status.UNCHANGED, found=facts.lines() if facts else [])
    if len(source.parts) > 1:
        report.files = [part.path for part in source.parts]
    line = facts.already_optimized if facts else None
    line = line if line is not None else inserted_marker_line(source)
    found = compression_in(text)
    asked = (
        {"recipe"}
        if options.recipe is not None
        else {approach_family(t) for t in options.techniques}
    )
    own = facts.own_compression if facts is not None else None
    if own is not None and inserted_marker_line(source) is None:
        return _own_compression_report(report, own, found, asked, options)
    if found and found != asked:
        raise NeuralCoderError(
            f"already compressed with {'+'.join(sorted(found))} (compression code at line {line}); "
            f"{options.name} was not applied",
            path=path,
            line=line,
            hint=f"to change the approach, run `neural-coder revert {path}` first (it gives back "
            "the original byte for byte), then optimize again",
        )
    report.message = (
        f"already compressed (compression code at line {line}); nothing to do "
        "(options are not re-applied: start from the original script to change them)"
    )
    return report


def _own_compression_report(
    report: FileReport,
    own: OwnCompression,
    found: set[str],
    asked: set[str],
    options: OptimizeOptions,
) -> FileReport:
    """Compression code the script's author wrote (no neural-coder marker): `revert` has
    nothing to give back, so the way out is the script's own code. The same approach is
    a no-op; another one (or any on INC 1.x code, which `migrate` upgrades) is refused."""
    families = "+".join(sorted(found))
    where = f"{own.api} ({families + ': ' if found else ''}{own.call} at line {own.line})"
    path = report.path
    if own.legacy:
        raise NeuralCoderError(
            f"the script already compresses its model with {where}: {options.name} would "
            "compress it a second time",
            path=path,
            line=own.line,
            hint=f"`neural-coder migrate {path}` upgrades the 1.x code to the 2.x API (the "
            f"script keeps its own compression); to use neural-coder's {options.name} "
            "instead, remove the 1.x code and run again",
        )
    if not found or found != asked:
        raise NeuralCoderError(
            f"the script already compresses its model with {where}, in its own code: "
            f"{options.name} on top would compress it a second time",
            path=path,
            line=own.line,
            hint=f"run the script as it is, or remove its compression code (the call at line "
            f"{own.line} and what feeds it) and run again for neural-coder's {options.name}",
        )
    report.message = (
        f"already compressed: the script does {families} itself with {where}; nothing to do"
    )
    return report


# the config each family of approaches inserts
COMPRESSION_CONFIGS = {
    **{config: technique for technique, config in CONFIG_CLASSES.items()},
    "PostTrainingQuantConfig": "ptq",
    "MixedPrecisionConfig": "bf16",
    "BenchmarkConfig": "benchmark",
    "RecipeConfig": "recipe",
}


def approach_family(technique: str) -> str:
    return "ptq" if technique.startswith("ptq-") else technique


def compression_in(text: str) -> set[str]:
    """The families of approaches whose configs the script builds."""
    return {family for name, family in COMPRESSION_CONFIGS.items() if f"{name}(" in text}
