"""neural_coder: rewrite PyTorch / Hugging Face scripts so that they compress their models."""

__version__ = "0.1.0"
