"""`MixedPrecisionConfig`: bf16 / fp16 conversion (spec 2.8)."""

from __future__ import annotations

from typing import Any, ClassVar

from .criteria import AccuracyCriterion, TuningCriterion
from .quantization import _BACKENDS, _DEVICES, _excluded_precisions, _op_dict, _precision_list
from .validation import (
    Validator,
    _Config,
    _fail,
    _instance_of,
    anything,
    one_of,
    str_list,
    string,
)


# -- mixed precision and benchmark -----------------------------------------------------
class MixedPrecisionConfig(_Config):
    """bf16 / fp16 conversion (spec 2.8). `precisions` is stored as a list; the
    v2.1 spelling `precision=` is accepted too (not both with different values)."""

    _rules: ClassVar[dict[str, Validator]] = {
        "device": one_of(*_DEVICES),
        "backend": one_of(*_BACKENDS),
        "precisions": _precision_list,
        "model_name": string(),
        "inputs": str_list(),
        "outputs": str_list(),
        "tuning_criterion": _instance_of(TuningCriterion),
        "accuracy_criterion": _instance_of(AccuracyCriterion),
        "excluded_precisions": _excluded_precisions,
        "op_name_dict": _op_dict,
        "op_type_dict": _op_dict,
        "example_inputs": anything,
    }

    framework: str | None = None

    def __init__(
        self,
        device: str = "cpu",
        backend: str = "default",
        precisions: str | list[str] = "bf16",
        model_name: str = "",
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
        tuning_criterion: TuningCriterion | None = None,
        accuracy_criterion: AccuracyCriterion | None = None,
        excluded_precisions: list[str] | None = None,
        op_name_dict: dict[str, Any] | None = None,
        op_type_dict: dict[str, Any] | None = None,
        example_inputs: Any = None,
        *,
        precision: str | list[str] | None = None,
    ) -> None:
        if precision is not None:
            alias = _precision_list(type(self).__name__, "precision", precision)
            if (
                precisions != "bf16"
                and _precision_list(type(self).__name__, "precisions", precisions) != alias
            ):
                raise _fail(
                    type(self).__name__,
                    "precision",
                    precision,
                    f"the same value as precisions={precisions!r} (give only one of them)",
                )
            precisions = alias
        self.device = device
        self.backend = backend
        self.precisions = precisions
        self.model_name = model_name
        self.inputs = [] if inputs is None else inputs
        self.outputs = [] if outputs is None else outputs
        self.tuning_criterion = TuningCriterion() if tuning_criterion is None else tuning_criterion
        self.accuracy_criterion = (
            AccuracyCriterion() if accuracy_criterion is None else accuracy_criterion
        )
        self.excluded_precisions = excluded_precisions
        self.op_name_dict = {} if op_name_dict is None else op_name_dict
        self.op_type_dict = {} if op_type_dict is None else op_type_dict
        self.example_inputs = example_inputs

    @property
    def precision(self) -> list[str]:
        """v2.1's name for `precisions`."""
        return self.precisions

    @precision.setter
    def precision(self, value: str | list[str]) -> None:
        self.precisions = value

    @property
    def use_bf16(self) -> bool:
        return "bf16" in self.precisions
