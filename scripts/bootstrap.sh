#!/usr/bin/env bash
# Installs what torch-vbp needs and builds it; safe to run again (each step is skipped when done).
#   system: LibTorch (libtorch-dev), Debian's python3-torch/torchvision for the PyTorch reference,
#           OpenBLAS (without it Debian's torch uses the reference BLAS, ~10x slower), Gloo's headers (the
#           distributed backend inside LibTorch, libgloo-dev), libjpeg-turbo's headers (the native JPEG
#           path, libjpeg62-turbo-dev), Fashion-MNIST,
#           and the build tools (cmake, g++, make);
#   npm:    the lockfile's packages, without running install scripts (the addon is built below);
#   build:  the native addon (cmake-js) and the TypeScript (tsc).
# Nothing is downloaded from outside Debian's archive and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[torch-vbp] %s\n' "$*"; }

packages=(libtorch-dev libgloo-dev libjpeg62-turbo-dev python3-torch python3-torchvision python3-numpy libopenblas0-pthread dataset-fashion-mnist cmake g++ make)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  say "not a Debian/Ubuntu system: install LibTorch, cmake and a C++17 compiler yourself (README, 'Building and LibTorch')"
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    say "installing system packages with sudo: ${missing[*]}"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing system packages: ${missing[*]}"
    say "run: sudo apt-get install ${missing[*]}   (then this command again)"
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi

say "building the native addon (cmake-js)"
npx --no-install cmake-js build --out build --log-level warn >/tmp/torch-vbp-build.log 2>&1 || {
  cat /tmp/torch-vbp-build.log
  exit 1
}
say "compiling TypeScript"
npx --no-install tsc -p tsconfig.json
say "ready: $(node -e "const v=require('./dist/lib').versionInfo(); console.log('LibTorch ' + v.torch + (v.cuda ? ' (CUDA)' : ' (CPU)'))")"
