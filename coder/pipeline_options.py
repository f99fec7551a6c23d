"""Multi-shot pipelines as a person writes them: `--approach 'distillation>pruning>qat'`,
`pruning-then-ptq-static`, or a `pipeline:` list in `--config`, with `stage_epochs`."""

from __future__ import annotations

import re

from neural_coder.approaches import POST_TRAINING, TRAINING_TECHNIQUES
from neural_coder.errors import ConfigError

#: `a>b`, `a then b` and `a-then-b` separate the stages of a multi-shot pipeline
STAGE_SEPARATOR = re.compile(r"\s*>\s*|\s+then\s+|-then-", re.IGNORECASE)
#: post-training approaches that may end a pipeline (a fit on the trained model)
FIT_AFTER_TRAINING = ("ptq-static", "ptq-dynamic", "ptq-auto", "bf16")
PIPELINE_USAGE = (
    "stages joined by '>' (quote it in a shell: --approach 'distillation>pruning>qat'), "
    "by ' then ', or by '-then-' (--approach pruning-then-ptq-static); each stage one of "
    f"{', '.join(TRAINING_TECHNIQUES)}, at most once, qat the last training stage; the last "
    f"stage may be a fit after training: {', '.join(FIT_AFTER_TRAINING)}"
)


def is_pipeline(text: str) -> bool:
    return bool(STAGE_SEPARATOR.search(text.strip()))


def parse_pipeline(text: str) -> tuple[tuple[str, ...], str | None]:
    """`distillation>pruning>ptq-static` -> (("distillation", "pruning"), "ptq-static")."""
    stages = [p.strip().lower() for p in STAGE_SEPARATOR.split(text.strip())]
    return check_pipeline(stages, text)


def check_pipeline(stages: list[str], text: str) -> tuple[tuple[str, ...], str | None]:
    if any("+" in s for s in stages):
        raise ConfigError(
            f"approach {text!r} mixes '+' (one shot: together) with stages (one after "
            f"another); a pipeline is {PIPELINE_USAGE}"
        )
    if len(stages) < 2 or not all(stages):
        raise ConfigError(f"approach {text!r} has an empty stage; a pipeline is {PIPELINE_USAGE}")
    fit = stages[-1] if stages[-1] in POST_TRAINING else None
    training = stages[:-1] if fit else stages
    if fit is not None and fit not in FIT_AFTER_TRAINING:
        raise ConfigError(
            f"{fit} cannot end a pipeline ({text!r}): it measures, it does not compress; "
            "run it on the compressed script afterwards"
        )
    for stage in training:
        if stage in POST_TRAINING:
            raise ConfigError(
                f"{stage} in {text!r} is a post-training approach: only the last stage can be one"
            )
        if stage not in TRAINING_TECHNIQUES:
            raise ConfigError(
                f"unknown stage {stage!r} in {text!r}; a pipeline is {PIPELINE_USAGE}"
            )
    if len(set(training)) != len(training):
        raise ConfigError(f"approach {text!r} names a technique twice")
    if "qat" in training[:-1]:
        raise ConfigError(
            f"qat must be the last training stage in {text!r}: its int8 conversion ends training"
        )
    if fit is not None and "qat" in training:
        raise ConfigError(
            f"{fit} after qat in {text!r} would quantize a model that QAT already quantized; "
            "end the pipeline with qat or with the post-training approach, not both"
        )
    return tuple(training), fit


def pipeline_from_config(value: object) -> tuple[str, list[int] | None]:
    """A config's `pipeline`: a list of stages, each a name or a one-key mapping
    `{name: epochs}` -> ("a>b>c", the epochs when every training stage gives them)."""
    usage = (
        "'pipeline' must be a list of stages, each a technique (e.g. [distillation, pruning, "
        "qat]) or a mapping of a training technique to its epochs (e.g. [{pruning: 3}, {qat: 1}])"
    )
    if not isinstance(value, list) or len(value) < 2:
        raise ConfigError(usage)
    names: list[str] = []
    epochs: list[int] = []
    for item in value:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and len(item) == 1:
            ((name, count),) = item.items()
            names.append(str(name))
            epochs.append(count)
        else:
            raise ConfigError(f"{usage}; got {item!r}")
    if epochs and len(epochs) != len([n for n in names if n not in POST_TRAINING]):
        raise ConfigError(
            "'pipeline' gives the epochs of some training stages only: give every training "
            "stage its epochs, or none (an even split)"
        )
    return ">".join(names), (epochs or None)


def stage_epochs_value(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",")]
        except ValueError:
            raise ConfigError(
                f"stage_epochs {value!r} is not comma-separated integers (e.g. 2,2,1)"
            ) from None
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        raise ConfigError(
            f"stage_epochs must be integers >= 1 (one per training stage), got {value!r}"
        )
    return tuple(value)
