"""libcst transformers that perform neural-coder's edits."""
