#!/usr/bin/env bash
# Install everything from this checkout and run the whole test suite.
# Usage: bash tools/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# The constraint pins torch==2.13.0 (the CPU build these machines have): nothing may pull another torch.
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,lsp,jupyter,structured]"

# The JupyterLab extension: built with @jupyterlab/builder from the npm registry (about a
# minute on 2 cores), then found by JupyterLab in .venv (tools/build_labextension.sh).
bash tools/build_labextension.sh .venv/bin/python

# Debian's Chromium for the JupyterLab browser test (Playwright drives it; nothing is downloaded).
# If apt-get cannot install it, tests/notebooks/test_browser.py skips and says so.
if ! command -v chromium >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium; } >/dev/null 2>&1 \
        || echo "tools/test.sh: chromium could not be installed with apt-get; the browser test will skip" >&2
fi

# Intel Neural Compressor 2.6 lives in its own environment (it pins numpy 1.26);
# the interop tests run rewritten scripts on it.
if [ -z "${NEURAL_CODER_INC_PYTHON:-}" ] && [ -f tools/make_inc_env.sh ]; then
    NEURAL_CODER_INC_PYTHON="$(bash tools/make_inc_env.sh .venv-inc | tail -n 1)"
    export NEURAL_CODER_INC_PYTHON
fi

# Neovim (Debian's) is the second real LSP client of tests/lsp/test_neovim.py.
if ! command -v nvim >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q neovim >/dev/null
fi

# The VS Code extension: compiled with tsc, unit-tested against a stub of the vscode API
# (node's test runner), packaged to extensions/vscode/neural-coder.vsix with @vscode/vsce.
bash extensions/vscode/build.sh

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
