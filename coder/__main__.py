"""`python -m neural_coder ...`: the same command line as `neural-coder` (editors start
`python -m neural_coder lsp`)."""

from neural_coder.cli import main

main(prog_name="neural-coder")
