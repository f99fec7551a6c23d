#!/usr/bin/env bash
# Create (or reuse) the virtual environment that holds Intel Neural Compressor 2.6
# for the interop tests (tests/inc). It is separate from .venv because INC 2.6
# requires numpy<2.
#
# Usage: bash tools/make_inc_env.sh [ENV_DIR]     (default: .venv-inc at the repo root)
#        PYTHON=python3.11 bash tools/make_inc_env.sh ...   (base interpreter; default python3)
#        NEURAL_CODER_INC_EXTRAS="transformers" bash tools/make_inc_env.sh ...
#            (optional extra requirements, e.g. to run Hugging Face scripts on INC; not needed by tests/inc)
#
# Idempotent: a second run with the same requirements only verifies the imports.
# Everything it logs goes to stderr; the last (only) line on stdout is the
# absolute path of the environment's python, so that
#     NEURAL_CODER_INC_PYTHON="$(bash tools/make_inc_env.sh .venv-inc | tail -n 1)"
# works.
#
# What INC 2.6 needs on torch 2.13, found by trial (see tests/inc/README.md):
#   neural-compressor==2.6   the library (it does not depend on torch: torch is listed here)
#   setuptools<81            neural_compressor.utils.utility imports pkg_resources at import time;
#                            setuptools >= 81 no longer ships it (torch pulls setuptools 8x otherwise)
#   six                      neural_compressor.data.transforms.tokenization imports six, undeclared
#   torch                    pinned to 2.13.0 by constraints.txt, like every install in this project
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
constraints="$root/constraints.txt"
env_arg="${1:-$root/.venv-inc}"
mkdir -p "$env_arg"
env_dir="$(cd "$env_arg" && pwd)"
requirements=(torch "neural-compressor==2.6" "setuptools<81" six)
# shellcheck disable=SC2206  # word splitting is the point: a space-separated list
requirements+=(${NEURAL_CODER_INC_EXTRAS:-})
stamp="$env_dir/.neural-coder-inc-stamp"

log() { printf 'make_inc_env: %s\n' "$*" >&2; }

# numpy<2 has no wheels for Python >= 3.13: pick an interpreter it can install on.
pick_python() {
    local candidate
    for candidate in "${PYTHON:-python3}" python3.12 python3.11 python3.10; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    log "no Python 3.10-3.12 found (INC 2.6 needs numpy<2, which has no wheels for 3.13+); set PYTHON="
    return 1
}

verify() {
    # Imports the 2.x training API exactly as the interop scripts do; no network is needed.
    "$env_dir/bin/python" - <<'PY' >&2
import warnings
warnings.filterwarnings("ignore")  # pkg_resources deprecation
import torch
import neural_compressor
from neural_compressor.config import (
    DistillationConfig, KnowledgeDistillationLossConfig,
    QuantizationAwareTrainingConfig, WeightPruningConfig,
)
from neural_compressor.training import prepare_compression
assert neural_compressor.__version__ == "2.6", neural_compressor.__version__
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
print(f"make_inc_env: ok: neural_compressor {neural_compressor.__version__}, torch {torch.__version__}")
PY
}

fingerprint="$(printf '%s\n' "${requirements[@]}" | cat - "$constraints" | sha256sum | cut -d' ' -f1)"

if [ -x "$env_dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ] && verify 2>/dev/null; then
    log "reusing $env_dir"
else
    start=$SECONDS
    base="$(pick_python)"
    if [ ! -x "$env_dir/bin/python" ] || ! "$env_dir/bin/python" -c '' 2>/dev/null; then
        log "creating $env_dir with $base"
        "$base" -m venv --clear "$env_dir"
    fi
    rm -f "$stamp"
    log "installing ${requirements[*]} (constraint: $constraints)"
    "$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$constraints" "${requirements[@]}" >&2
    verify
    "$env_dir/bin/python" -m pip freeze --all >"$env_dir/inc-freeze.txt"
    printf '%s\n' "$fingerprint" >"$stamp"
    log "installed in $((SECONDS - start)) s; versions in $env_dir/inc-freeze.txt"
fi

printf '%s\n' "$env_dir/bin/python"
