"""What a person asks `optimize` for: the approach and each technique's settings.

Settings come from defaults, then a `--config` yaml, then command-line flags.
Every value is checked here, before any file is read, and errors list what is
allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neural_coder.approaches import POST_TRAINING, TRAINING_TECHNIQUES
from neural_coder.errors import ConfigError
from neural_coder.pipeline_options import (
    is_pipeline,
    parse_pipeline,
    pipeline_from_config,
    stage_epochs_value,
)
from neural_coder.transforms.lazy import lazy_module

if TYPE_CHECKING:
    import yaml
else:
    yaml = lazy_module("yaml")

TARGETS = ("runtime", "inc")
PRUNING_TYPES = (
    "magnitude", "gradient", "snip", "snip_momentum", "pattern_lock",
    "magnitude_progressive", "gradient_progressive", "snip_progressive", "snip_momentum_progressive",
)  # fmt: skip
GRADIENT_CRITERIA = ("gradient", "snip", "snip_momentum")
PATTERN = re.compile(r"^(\d+|channel)x(\d+|channel)$|^(\d+):(\d+)$")
LOSS_TYPES = (("CE", "MSE"), ("CE", "KL", "MSE"))


@dataclass(frozen=True)
class PruningOptions:
    target_sparsity: float = 0.5
    pattern: str = "4x1"
    pruning_type: str = "snip_momentum"
    pruning_scope: str = "global"
    start_step: int | None = None  # None: 0, or 1 for gradient criteria (they need a gradient)
    end_step: int | None = None  # None: fitted to the run (80 % of its optimizer steps)
    # remove the pruned channels at the end of training (WeightPruningConfig(shrink=True));
    # None: on for channel patterns (channelx1, 1xchannel) with the bundled runtime
    shrink: bool | None = None

    def check(self) -> None:
        _typed(
            self,
            {
                "target_sparsity": (int, float),
                "pattern": str,
                "pruning_type": str,
                "pruning_scope": str,
            },
        )
        if not 0.0 <= self.target_sparsity < 1.0:
            raise ConfigError(
                f"pruning target_sparsity must be in [0, 1), got {self.target_sparsity}"
            )
        match = PATTERN.match(self.pattern)
        if match and any(g is not None and g.isdigit() and int(g) == 0 for g in match.groups()):
            raise ConfigError(f"pruning pattern {self.pattern!r}: block sizes must be >= 1")
        if not match:
            raise ConfigError(
                f"pruning pattern {self.pattern!r} is not one of NxM (e.g. 4x1, 1x1 for unstructured, channelx1) or N:M (e.g. 2:4)"
            )
        if match.group(3) is not None:
            n, m = int(match.group(3)), int(match.group(4))
            if not 0 < n < m:
                raise ConfigError(f"pruning pattern {self.pattern!r}: N:M needs 0 < N < M")
            if self.target_sparsity > n / m and self.pruning_type != "pattern_lock":
                raise ConfigError(
                    f"pruning target_sparsity {self.target_sparsity} exceeds {n}/{m} allowed by {self.pattern}"
                )
        if self.shrink is not None and not isinstance(self.shrink, bool):
            raise ConfigError(f"pruning shrink must be true, false or null, got {self.shrink!r}")
        _one_of("pruning pruning_type", self.pruning_type, PRUNING_TYPES)
        _one_of("pruning pruning_scope", self.pruning_scope, ("global", "local"))
        for name in ("start_step", "end_step"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ConfigError(f"pruning {name} must be an integer >= 0, got {value!r}")
        if (
            self.start_step is not None
            and self.end_step is not None
            and self.end_step < self.start_step
        ):
            raise ConfigError(
                f"pruning end_step {self.end_step} is before start_step {self.start_step}"
            )

    @property
    def channel_pattern(self) -> bool:
        """Whole rows or columns (channelx1, 1xchannel): what shrinking can remove."""
        return "channel" in self.pattern

    def shrinks(self, target: str, by_default: bool = True) -> bool:
        """Whether the generated config asks the runtime to remove the pruned channels."""
        if self.shrink is None:
            return by_default and self.channel_pattern and target == "runtime"
        return self.shrink

    @property
    def first_step(self) -> int:
        if self.start_step is not None:
            return self.start_step
        return 1 if self.pruning_type.split("_progressive")[0] in GRADIENT_CRITERIA else 0


@dataclass(frozen=True)
class QATOptions:
    backend: str = "default"

    def check(self) -> None:
        _typed(self, {"backend": str})
        _one_of("qat backend", self.backend, ("default", "ipex"))


TEACHER_COPY = "copy"


@dataclass(frozen=True)
class DistillationOptions:
    # None: the script's frozen teacher, or a copy of a model loaded trained; "copy": a
    # frozen copy of the model whatever it holds; a *.pt/*.pth/*.bin path; or an expression
    teacher: str | None = None
    temperature: float = 1.0
    loss_types: tuple[str, str] = ("CE", "KL")
    loss_weights: tuple[float, float] = (0.5, 0.5)

    def check(self) -> None:
        _typed(self, {"teacher": (str, type(None)), "temperature": (int, float)})
        if not self.temperature > 0:
            raise ConfigError(f"distillation temperature must be > 0, got {self.temperature}")
        if not all(isinstance(t, str) for t in self.loss_types):
            raise ConfigError(
                f"distillation loss_types must be two names (e.g. [CE, KL]), got {list(self.loss_types)!r}"
            )
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in self.loss_weights):
            raise ConfigError(
                f"distillation loss_weights must be two numbers (e.g. [0.5, 0.5]), got {list(self.loss_weights)!r}"
            )
        if len(self.loss_types) != 2 or len(self.loss_weights) != 2:
            raise ConfigError(
                "distillation loss_types and loss_weights take two values each (student vs labels, student vs teacher)"
            )
        _one_of("distillation loss_types[0]", self.loss_types[0], LOSS_TYPES[0])
        _one_of("distillation loss_types[1]", self.loss_types[1], LOSS_TYPES[1])
        if (
            any(not 0 <= w <= 1 for w in self.loss_weights)
            or abs(sum(self.loss_weights) - 1) > 1e-9
        ):
            raise ConfigError(
                f"distillation loss_weights must be in [0, 1] and sum to 1, got {list(self.loss_weights)}"
            )

    @property
    def teacher_is_copy(self) -> bool:
        """The user asks for a frozen copy of the model, trained or not (they know it is)."""
        return self.teacher == TEACHER_COPY

    @property
    def teacher_is_checkpoint(self) -> bool:
        return self.teacher is not None and self.teacher.endswith((".pt", ".pth", ".bin", ".ckpt"))


@dataclass(frozen=True)
class PTQOptions:
    """Post-training quantization: the accuracy goal used when the script evaluates."""

    criterion: str = "relative"
    tolerable_loss: float = 0.01
    max_trials: int = 100
    calibration_sampling_size: int = 100
    # where a fit that nothing in the script reads afterwards saves the compressed model
    # (None: beside the script's checkpoints, else neural_coder_output/<approach>)
    save_dir: str | None = None

    def check(self) -> None:
        _typed(
            self,
            {
                "criterion": str,
                "tolerable_loss": (int, float),
                "max_trials": int,
                "calibration_sampling_size": int,
                "save_dir": (str, type(None)),
            },
        )
        if self.save_dir is not None and not self.save_dir.strip():
            raise ConfigError("ptq save_dir must name a folder, got an empty string")
        _one_of("ptq criterion", self.criterion, ("relative", "absolute"))
        if self.tolerable_loss < 0:
            raise ConfigError(f"ptq tolerable_loss must be >= 0, got {self.tolerable_loss}")
        if self.max_trials < 1 or self.calibration_sampling_size < 1:
            raise ConfigError("ptq max_trials and calibration_sampling_size must be >= 1")


@dataclass(frozen=True)
class BenchmarkOptions:
    """`--approach benchmark`: what `BenchmarkConfig` gets."""

    warmup: int = 5
    iteration: int = 50
    cores_per_instance: int | None = None  # None: the cores divided among the instances
    num_of_instance: int = 1

    def check(self) -> None:
        _typed(
            self,
            {
                "warmup": int,
                "iteration": int,
                "cores_per_instance": (int, type(None)),
                "num_of_instance": int,
            },
        )
        if self.warmup < 0 or self.iteration < 1 or self.num_of_instance < 1:
            raise ConfigError("benchmark warmup must be >= 0, iteration and num_of_instance >= 1")
        if self.cores_per_instance is not None and self.cores_per_instance < 1:
            raise ConfigError("benchmark cores_per_instance must be >= 1")


@dataclass(frozen=True)
class OptimizeOptions:
    # the training-time techniques (one shot, or the stages of a multi-shot pipeline), or
    # the one post-training approach
    approach: tuple[str, ...]
    target: str = "runtime"
    # multi-shot: the training techniques of `approach` run one after another over the
    # epochs (`stage_epochs` each, None: an even split), then `then_fit` (a post-training
    # approach) on the trained model
    staged: bool = False
    stage_epochs: tuple[int, ...] | None = None
    then_fit: str | None = None
    pruning: PruningOptions = field(default_factory=PruningOptions)
    qat: QATOptions = field(default_factory=QATOptions)
    distillation: DistillationOptions = field(default_factory=DistillationOptions)
    ptq: PTQOptions = field(default_factory=PTQOptions)
    benchmark: BenchmarkOptions = field(default_factory=BenchmarkOptions)
    # a Distiller-style recipe file: it sets the techniques and the schedule
    recipe: str | None = None

    def check(self) -> None:
        _one_of("target", self.target, TARGETS)
        self.pruning.check()
        if self.pruning.shrink and self.target == "inc" and "pruning" in self.approach:
            raise ConfigError(
                "pruning shrink (removing the pruned channels) is a feature of the bundled "
                "runtime; Intel Neural Compressor 2.x has none: use --target runtime or --no-shrink"
            )
        self.qat.check()
        self.distillation.check()
        self.ptq.check()
        self.benchmark.check()
        check_stages(self)

    @property
    def post_training(self) -> bool:
        return self.approach[0] in POST_TRAINING

    @property
    def techniques(self) -> tuple[str, ...]:
        """Every technique asked for, the post-training one of a pipeline last."""
        return self.approach + ((self.then_fit,) if self.then_fit else ())

    @property
    def name(self) -> str:
        """The approach as the user writes it (`pruning+qat`, `distillation>pruning>qat`)."""
        return (">" if self.multishot else "+").join(self.techniques)

    @property
    def multishot(self) -> bool:
        return self.staged or self.then_fit is not None


def parse_approach(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip().lower() for p in text.split("+"))
    allowed = (
        f"{', '.join(TRAINING_TECHNIQUES)}, a '+'-joined combination of them (e.g. pruning+qat), "
        f"or one of {', '.join(POST_TRAINING)}"
    )
    if len(parts) == 1 and parts[0] in POST_TRAINING:
        return parts
    if len(parts) > 1 and any(p in POST_TRAINING for p in parts):
        raise ConfigError(
            f"post-training approaches do not combine with others in one shot ({text!r}); use "
            f"{allowed}, or a pipeline that trains then fits (e.g. 'pruning>ptq-static')"
        )
    for part in parts:
        if part not in TRAINING_TECHNIQUES:
            raise ConfigError(f"unknown approach {part!r} in {text!r}; choose {allowed}")
    if len(set(parts)) != len(parts):
        raise ConfigError(f"approach {text!r} names a technique twice")
    return parts


SECTIONS = {
    "pruning": PruningOptions,
    "qat": QATOptions,
    "distillation": DistillationOptions,
    "ptq": PTQOptions,
    "benchmark": BenchmarkOptions,
}


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a --config yaml: top-level `approach`, `target` and one section per technique."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"not UTF-8 text ({error.reason} at byte {error.start}); save the config as UTF-8",
            path=path,
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise ConfigError(
            f"not valid yaml: {getattr(error, 'problem', error)}",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    return check_config(data, path)


def check_config(data: object, path: Path | None = None) -> dict[str, Any]:
    """A config mapping (a --config yaml, an editor's settings) with its keys checked."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping (key: value)", path=path)
    allowed = {"approach", "target", "recipe", "pipeline", "stage_epochs", *SECTIONS}
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r}; allowed: {', '.join(sorted(allowed))}", path=path
            )
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{key!r} must be a mapping", path=path)
            known = {f.name for f in fields(SECTIONS[key])}
            for sub in value:
                if sub not in known:
                    raise ConfigError(
                        f"unknown key {key}.{sub}; allowed: {', '.join(sorted(known))}", path=path
                    )
    return data


def build_options(
    approach: str | None,
    target: str | None,
    config: dict[str, Any],
    overrides: dict[str, dict[str, Any]],
    recipe: str | None = None,
) -> OptimizeOptions:
    chosen = approach or config.get("approach")
    stage_epochs = overrides.get("pipeline", {}).get("stage_epochs")
    if stage_epochs is None:
        stage_epochs = config.get("stage_epochs")
    if not approach and config.get("pipeline") is not None:
        if config.get("approach") is not None:
            raise ConfigError("set 'approach' or 'pipeline' in the config, not both")
        chosen, from_list = pipeline_from_config(config["pipeline"])
        stage_epochs = from_list if from_list is not None else stage_epochs
    recipe = recipe or config.get("recipe")
    if recipe is not None:
        from neural_coder.recipe_options import recipe_techniques

        if chosen:
            raise ConfigError(
                "--recipe sets what is compressed and when; drop --approach (or 'approach' in "
                "--config), or drop --recipe"
            )
        if (target or config.get("target", "runtime")) != "runtime":
            raise ConfigError(
                "--recipe needs --target runtime: Intel Neural Compressor has no recipe files"
            )
        chosen = "+".join(recipe_techniques(str(recipe)))
    if not chosen:
        raise ConfigError(
            "no approach given: pass --approach (e.g. --approach pruning+qat) or set 'approach' in --config"
        )
    staged: tuple[str, ...] | None = None
    then_fit = None
    if is_pipeline(str(chosen)):
        staged, then_fit = parse_pipeline(str(chosen))
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        values = {
            **(config.get(name) or {}),
            **{k: v for k, v in overrides.get(name, {}).items() if v is not None},
        }
        for key in ("loss_types", "loss_weights"):
            if key in values and not isinstance(values[key], tuple):
                if not isinstance(values[key], list):
                    raise ConfigError(
                        f"{name} {key} must be a list of two values, got {values[key]!r}"
                    )
                values[key] = tuple(values[key])
        try:
            sections[name] = replace(cls(), **values)
        except TypeError as error:
            raise ConfigError(f"{name}: {error}") from None
    options = OptimizeOptions(
        approach=staged if staged is not None else parse_approach(str(chosen)),
        target=target or config.get("target", "runtime"),
        staged=staged is not None and len(staged) > 1,
        stage_epochs=stage_epochs_value(stage_epochs),
        then_fit=then_fit,
        recipe=None if recipe is None else str(recipe),
        **sections,
    )
    options.check()
    return options


def check_stages(options: OptimizeOptions) -> None:
    """A pipeline's settings against its stages and target."""
    if options.stage_epochs is not None:
        if not options.staged:
            raise ConfigError(
                "stage_epochs splits the epochs of a multi-shot pipeline's training stages; "
                f"{options.name!r} has {len(options.approach)} training stage(s) "
                "(write stages as --approach 'distillation>pruning>qat')"
            )
        if len(options.stage_epochs) != len(options.approach):
            raise ConfigError(
                f"stage_epochs {list(options.stage_epochs)} gives {len(options.stage_epochs)} "
                f"counts for the {len(options.approach)} training stages of {options.name!r}"
            )
    if options.staged and options.target == "inc":
        raise ConfigError(
            f"{options.name!r}: Intel Neural Compressor 2.x's prepare_compression has no staged "
            "(multi-shot) run; use --target runtime, or one training stage before a fit "
            "(e.g. pruning>ptq-static)"
        )


def _typed(options: object, expected: dict[str, type | tuple[type, ...]]) -> None:
    section = type(options).__name__.removesuffix("Options").lower()
    for name, kind in expected.items():
        value = getattr(options, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            wanted = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            hint = (
                " (quote it in yaml: '2:4' unquoted is read as a number)"
                if name == "pattern"
                else ""
            )
            raise ConfigError(f"{section} {name} must be {wanted}, got {value!r}{hint}")


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
