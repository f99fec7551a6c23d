#!/usr/bin/env bash
# Build, unit-test and package the extension: out/ (tsc) and neural-coder.vsix (@vscode/vsce).
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm test
npm run package
