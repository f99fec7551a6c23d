#!/usr/bin/env bash
# Build, unit-test and package the extension: out/ (tsc), node:test against a stubbed
# vscode API, and neural-coder.vsix (@vscode/vsce). Everything comes from the npm registry.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q nodejs npm >/dev/null
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
    echo "extensions/vscode: @vscode/vsce needs Node.js >= 20, this is $(node --version)" >&2
    exit 1
fi
npm ci --no-audit --no-fund
npm test
npm run package
