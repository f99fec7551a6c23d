"""Weight pruning (INC 2.x `WeightPruningConfig`): see `engine.py`."""

from .engine import Pattern, PruningCompressor, target_at

__all__ = ["Pattern", "PruningCompressor", "target_at"]
