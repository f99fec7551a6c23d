"""`python -m neural_coder ...`: the CLI (editors start `python -m neural_coder lsp`)."""

from neural_coder.cli import main

main()
