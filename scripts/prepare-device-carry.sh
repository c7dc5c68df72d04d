#!/usr/bin/env bash
# Prepares what scripts/device-cuda-check.sh needs on a GPU machine without Node.js or network: a compressed
# copy of this machine's node binary (needs only glibc) in .device/ (git-ignored), a fresh dist/, and the
# fixtures (test/fixtures, made here by Debian's torch; a torch 2.x loads them). Everything else it needs is
# tracked (sources, test/python, bench/python) and travels with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device
xz -T2 -c "$(command -v node)" > .device/node.xz
npx --no-install tsc -p tsconfig.json
[ -f test/fixtures/.stamp ] || { echo "test/fixtures is missing: run npm test once (its global set-up makes them)"; exit 1; }
carry=(.device dist test/fixtures node_modules/node-addon-api node_modules/node-api-headers node_modules/node-gyp-build)
du -shc "${carry[@]}"
printf 'carry: ["%s"' "${carry[0]}"; printf ', "%s"' "${carry[@]:1}"; printf ']\n'
echo 'run:   bash scripts/device-cuda-check.sh   (timeout_s 540; results in $OUT)'
