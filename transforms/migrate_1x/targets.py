"""Where each 2.x name is imported from, per `--target`.

`inc`: the migrated script imports Intel Neural Compressor 2.x.
`runtime`: it imports neural-coder's bundled runtime, which follows the same API,
so the script runs with torch and this package only.
"""

from __future__ import annotations

from dataclasses import dataclass

from neural_coder.transforms.errors import MigrationError

TARGETS = ("inc", "runtime")

_CONFIG_CLASSES = (
    "PostTrainingQuantConfig",
    "QuantizationAwareTrainingConfig",
    "WeightPruningConfig",
    "DistillationConfig",
    "KnowledgeDistillationLossConfig",
    "IntermediateLayersKnowledgeDistillationLossConfig",
    "SelfKnowledgeDistillationLossConfig",
    "MixedPrecisionConfig",
    "BenchmarkConfig",
    "AccuracyCriterion",
    "TuningCriterion",
)
_OPTIONS = ("set_random_seed", "set_workspace", "set_resume_from", "set_tensorboard")

_ROOT = {"inc": "neural_compressor", "runtime": "neural_coder.runtime"}


@dataclass(frozen=True)
class Symbol:
    """`from module import name` (or `import module` when name is None)."""

    module: str
    name: str | None


def symbol(name: str, target: str) -> Symbol:
    """The import that provides the 2.x `name` for `target`."""
    if target not in TARGETS:
        raise MigrationError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    root = _ROOT[target]
    if name in _CONFIG_CLASSES:
        return Symbol(f"{root}.config", name)
    if name in _OPTIONS:
        # INC 2.x exports the option setters from the package root (spec 2.1)
        return Symbol(root, name)
    if name == "prepare_compression":
        return Symbol(f"{root}.training", name)
    if name in ("quantization", "mix_precision", "benchmark"):
        return Symbol(root, name)
    if name == "torch":
        return Symbol("torch", None)
    raise KeyError(name)


# 1.x/2.x utilities that keep their 2.x name; with --target runtime their import is redirected.
RUNTIME_REDIRECTS: dict[tuple[str, str], tuple[str, str]] = {
    ("neural_compressor.utils.pytorch", "load"): ("neural_coder.runtime", "load"),
    ("neural_compressor.utils.load_huggingface", "save_for_huggingface_upstream"): (
        "neural_coder.runtime.integrations.transformers",
        "save_for_huggingface_upstream",
    ),
    ("neural_compressor.utils.load_huggingface", "OptimizedModel"): (
        "neural_coder.runtime.integrations.transformers",
        "OptimizedModel",
    ),
}
