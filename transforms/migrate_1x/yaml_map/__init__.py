"""The 1.x conf.yaml: safe loading, schema validation, and the field tables to 2.x.

* Loading uses a `yaml.SafeLoader` subclass that knows one extra tag, `!Pruner`
  (1.x pruning yamls use it); it builds a plain dict. Anything else that is not
  plain YAML (`!!python/object`, `!!python/name`, unknown tags) is refused with a
  `ConfigError` naming the file and line: nothing in the yaml is ever executed.
* `validate` checks the v1.14.2 schema (keys and types; `FIELDS` in `fields` lists every
  key with its 2.x home), so a typo or a wrong type is an error, never a silent default.
* The mapping functions turn sections into 2.x keyword arguments. Every field they
  read is marked consumed; fields without a 2.x home become TODO notes; what no
  component of the script consumed is reported by the engine as INFO.

The package holds one module per concern (`document`: loading and validation,
`schema`, `fields`, and one module per yaml section); the names the migration
components use are imported here, so they keep reading `yaml_map.X`.
"""

from __future__ import annotations

from ..codegen import Regex
from .distillation_section import LOSS_CONFIGS, Distillation, distillation, layer_mappings_2x
from .document import Keys, YamlDoc, dotted, load, validate
from .fields import FIELDS, FieldRule, Note, Notes, rule_for, short
from .pruning_section import Pruning, module_regex, pattern_2x, pruning
from .quantization_section import Quant, op_dicts, quant_approach, quantization
from .schema import SCHEMA, ListOf, MapOf, Scalar, Text, Union, as_list, floats, ints, percent
from .tuning_sections import (
    Evaluation,
    Tuning,
    benchmark,
    diagnosis,
    evaluation,
    framework_kwargs,
    mixed_precision,
    tuning,
)

__all__ = [
    "FIELDS",
    "LOSS_CONFIGS",
    "SCHEMA",
    "Distillation",
    "Evaluation",
    "FieldRule",
    "Keys",
    "ListOf",
    "MapOf",
    "Note",
    "Notes",
    "Pruning",
    "Quant",
    "Regex",
    "Scalar",
    "Text",
    "Tuning",
    "Union",
    "YamlDoc",
    "as_list",
    "benchmark",
    "diagnosis",
    "distillation",
    "dotted",
    "evaluation",
    "floats",
    "framework_kwargs",
    "ints",
    "layer_mappings_2x",
    "load",
    "mixed_precision",
    "module_regex",
    "op_dicts",
    "pattern_2x",
    "percent",
    "pruning",
    "quant_approach",
    "quantization",
    "rule_for",
    "short",
    "tuning",
    "validate",
]
