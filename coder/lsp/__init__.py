"""The language server: `neural-coder lsp` (see server.py)."""
