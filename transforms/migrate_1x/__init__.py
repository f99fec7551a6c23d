"""Migrate Intel Neural Compressor 1.x code (`neural_compressor.experimental` + conf.yaml)
to the 2.x API (`--target inc`) or to neural-coder's bundled runtime (`--target runtime`).

One module per 1.x component (quantization, pruning, distillation, mixed_precision,
benchmark, scheduler, model_conversion, common), `yaml_map` for the conf.yaml (safe
loading, schema, field tables), `engine.migrate_source` as the entry point.
"""

from .engine import migrate_source
from .findings import Finding, MigrationResult

__all__ = ["Finding", "MigrationResult", "migrate_source"]
