#!/usr/bin/env bash
# Build the JupyterLab extension (extensions/jupyterlab, TypeScript) with @jupyterlab/builder
# from the npm registry into coder/labextension, which the Python package ships: a wheel puts
# it in share/jupyter/labextensions (pyproject's data-files), so users need no Node.js.
# An editable install has no data files: then the built folder and the server extension's
# switch are linked into PYTHON's prefix, where JupyterLab looks.
# Usage: bash tools/build_labextension.sh [PYTHON]   (a Python with jupyterlab installed)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
core="$("$python" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')"
prefix="$("$python" -c 'import sys; print(sys.prefix)')"
cd "$root/extensions/jupyterlab"
npm ci --no-audit --no-fund --loglevel=error
npx tsc
rm -rf "$root/coder/labextension"
node node_modules/@jupyterlab/builder/lib/build-labextension.js --core-path "$core" . >/dev/null
test -f "$root/coder/labextension/package.json"

labext="$prefix/share/jupyter/labextensions/neural-coder-jupyterlab"
config="$prefix/etc/jupyter/jupyter_server_config.d/neural_coder.json"
if [ ! -e "$labext" ] || [ -L "$labext" ]; then
    mkdir -p "$(dirname "$labext")"
    ln -sfn "$root/coder/labextension" "$labext"
fi
if [ ! -e "$config" ] || [ -L "$config" ]; then
    mkdir -p "$(dirname "$config")"
    ln -sfn "$root/jupyter-config/jupyter_server_config.d/neural_coder.json" "$config"
fi
echo "built $root/coder/labextension"
