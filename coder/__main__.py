"""`python -m neural_coder`: the same command line as `neural-coder`."""

from neural_coder.cli import main

main(prog_name="neural-coder")
