#!/usr/bin/env bash
# Install neural-coder and run its main job on a bundled sample:
# rewrite samples/one_epoch_helper.py for pruning + QAT, show the diff, run the result.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints.txt -e .

work="$(mktemp -d)"
cp samples/one_epoch_helper.py "$work/train.py"
.venv/bin/neural-coder inspect "$work/train.py"
.venv/bin/neural-coder optimize "$work/train.py" --approach pruning+qat --target-sparsity 0.5 --diff || true
.venv/bin/neural-coder optimize "$work/train.py" --approach pruning+qat --target-sparsity 0.5
(cd "$work" && NEURAL_CODER_SUMMARY="$work/summary.json" "$OLDPWD/.venv/bin/python" train.py)
echo "summary written to $work/summary.json:"
cat "$work/summary.json"
