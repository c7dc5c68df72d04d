#!/usr/bin/env bash
# Prepares what scripts/device-cuda-check.sh needs on a GPU machine without Node.js: a compressed copy of
# this machine's node binary (needs only glibc) in .device/ (git-ignored), and a fresh dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device
xz -T2 -c "$(command -v node)" > .device/node.xz
npx --no-install tsc -p tsconfig.json
du -sh .device dist node_modules/node-addon-api node_modules/node-api-headers node_modules/node-gyp-build
echo 'carry: [".device", "dist", "node_modules/node-addon-api", "node_modules/node-api-headers", "node_modules/node-gyp-build"]'
echo 'run:   bash scripts/device-cuda-check.sh'
