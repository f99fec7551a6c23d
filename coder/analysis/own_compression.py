"""Compression a script already does with a library's API, written by its author: Intel
Neural Compressor (2.x `prepare_compression` / `prepare_pruning` / `quantization.fit`,
3.x `neural_compressor.torch.quantization`, 1.x `neural_compressor.experimental`),
optimum's quantizers and INC Trainers, Intel's Model Compression Research package. An approach
inserted on top would compress the model a second time, or fight the library over it."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from .index import Index

INC = "Intel Neural Compressor"
#: neural-coder's own runtime and INC 2.x (whose API the runtime shares): the entry points
_ENTRY_POINTS = ("prepare_compression", "quantization.fit", "mix_precision.fit")
_INC2 = ("prepare_pruning", "training.fit")
#: INC 3.x (`neural_compressor.torch.quantization`)
_INC3 = frozenset({"prepare", "convert", "quantize", "autotune"})
#: optimum-intel Trainers compress only when given one of these
_OPTIMUM_TRAINER_CONFIGS = ("quantization_config", "pruning_config", "distillation_config")
_MCR = "model_compression_research."
#: INC 1.x components that compress (`neural_compressor.experimental.Pruning("conf.yaml")`,
#: and the 1.0-style `neural_compressor.Quantization`; migrate_1x knows them all, but
#: importing it costs the yaml parser at startup)
_INC1 = frozenset(
    {"Quantization", "Pruning", "Distillation", "MixedPrecision", "Scheduler", "ModelConversion"}
)


@dataclass(frozen=True)
class OwnCompression:
    line: int
    call: str  # the callee as written, e.g. "prepare_compression"
    api: str  # "Intel Neural Compressor 1.x", "optimum-intel", ...
    legacy: bool = False  # INC 1.x: `neural-coder migrate` upgrades it


def find_own_compression(index: Index) -> OwnCompression | None:
    """The first call of a compression library's entry point, if any."""
    for call in index.calls:
        api = _api(index, call)
        if api is not None:
            line = index.source.line(call)
            return OwnCompression(line, index.source.code(call.func), api, api.endswith("1.x"))
    return None


def _api(index: Index, call: cst.Call) -> str | None:
    name = index.qualified(call.func)
    last = name.rsplit(".", 1)[-1]
    if name.endswith(_ENTRY_POINTS) and ("neural_co" in name or last == "prepare_compression"):
        return "neural-coder's runtime" if name.startswith("neural_coder") else f"{INC} 2.x"
    if name.startswith("neural_compressor."):
        if last in _INC1 and (
            name.startswith("neural_compressor.experimental.")
            or name.count(".") == 1
            or name == f"neural_compressor.{last.lower()}.{last}"
        ):
            return f"{INC} 1.x"
        if name.endswith(_INC2):
            return f"{INC} 2.x"
        if name.startswith("neural_compressor.torch.") and last in _INC3:
            return f"{INC} 3.x"
        return None
    if name.startswith("optimum."):
        parts = name.split(".")
        # INCQuantizer, ORTQuantizer, OVQuantizer (`XQuantizer.from_pretrained(...)`)
        if any(part.endswith("Quantizer") for part in parts):
            return "optimum-intel" if name.startswith("optimum.intel.") else "optimum"
        if last.startswith("INC") and last.endswith("Trainer") and _given_a_config(call):
            return "optimum-intel"
        return None
    if name.startswith(_MCR) and not _helper(last):
        return "the Model Compression Research package"
    return None


def _helper(name: str) -> bool:
    """The package's argument, config and logging helpers: no compression of their own."""
    lowered = name.lower()
    return name.startswith("add_") or any(w in lowered for w in ("argument", "config", "logger"))


def _given_a_config(call: cst.Call) -> bool:
    return any(
        arg.keyword is not None
        and arg.keyword.value in _OPTIMUM_TRAINER_CONFIGS
        and not (isinstance(arg.value, cst.Name) and arg.value.value == "None")
        for arg in call.args
    )
