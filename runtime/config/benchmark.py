"""`BenchmarkConfig`: the settings of `benchmark.fit` (spec 2.9)."""

from __future__ import annotations

from typing import Any, ClassVar

from .quantization import _BACKENDS, _DEVICES
from .validation import (
    Validator,
    _Config,
    _fail,
    _is_int,
    boolean,
    integer,
    one_of,
    str_list,
    string,
)


def _iteration(owner: str, param: str, value: Any) -> Any:
    if not _is_int(value) or not (value == -1 or value > 0):
        raise _fail(owner, param, value, "-1 (all batches) or an int > 0")
    return value


class BenchmarkConfig(_Config):
    """`benchmark.fit` settings (spec 2.9); `iteration=-1` means the whole dataloader."""

    _rules: ClassVar[dict[str, Validator]] = {
        "inputs": str_list(),
        "outputs": str_list(),
        "backend": one_of(*_BACKENDS),
        "device": one_of(*_DEVICES),
        "warmup": integer(0),
        "iteration": _iteration,
        "model_name": string(),
        "cores_per_instance": integer(1, allow_none=True),
        "num_of_instance": integer(1),
        "inter_num_of_threads": integer(1, allow_none=True),
        "intra_num_of_threads": integer(1, allow_none=True),
        "diagnosis": boolean(),
    }

    framework: str | None = None

    def __init__(
        self,
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
        backend: str = "default",
        device: str = "cpu",
        warmup: int = 5,
        iteration: int = -1,
        model_name: str = "",
        cores_per_instance: int | None = None,
        num_of_instance: int = 1,
        inter_num_of_threads: int | None = None,
        intra_num_of_threads: int | None = None,
        diagnosis: bool = False,
    ) -> None:
        self.inputs = [] if inputs is None else inputs
        self.outputs = [] if outputs is None else outputs
        self.backend = backend
        self.device = device
        self.warmup = warmup
        self.iteration = iteration
        self.model_name = model_name
        self.cores_per_instance = cores_per_instance
        self.num_of_instance = num_of_instance
        self.inter_num_of_threads = inter_num_of_threads
        self.intra_num_of_threads = intra_num_of_threads
        self.diagnosis = diagnosis

    def keys(self) -> tuple[str, ...]:
        """The fields exported as upper-case environment variables (INC's order)."""
        return (
            "inputs",
            "outputs",
            "backend",
            "device",
            "warmup",
            "iteration",
            "model_name",
            "cores_per_instance",
            "num_of_instance",
            "framework",
            "inter_num_of_threads",
            "intra_num_of_threads",
        )

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)
