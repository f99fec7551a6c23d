"""Re-export of the exception family (defined in transforms, see there why)."""

from neural_coder.transforms.errors import (
    AnalysisError,
    ConfigError,
    MigrationError,
    NeuralCoderError,
    ParseError,
)

__all__ = ["AnalysisError", "ConfigError", "MigrationError", "NeuralCoderError", "ParseError"]
