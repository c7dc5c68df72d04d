#!/usr/bin/env bash
# Installs torch-vbp as a dependency, as a user does, and checks what that build computes (npm run
# test:install; .ci/run runs it after the README's two commands):
#   1. packs the package (without any prebuild, so the install builds binding.gyp with node-gyp),
#   2. installs the tarball into a new app folder, approves its install script (npm 11) and rebuilds it
#      with --foreground-scripts, checking that the install says what it builds,
#   3. compares the installed addon with this checkout's cmake-js build: MACs of the bundled model, a forward
#      against PyTorch (Debian's, torch.jit.load), and no LibTorch callback errors on stderr.
# Needs the checkout built (npm run build) and the npm registry for the package's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d /tmp/torch-vbp-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
say() { printf '[check-install] %s\n' "$*"; }

# 1. The tarball, from the files npm would pack, without prebuilds.
say "packing"
mkdir -p "$work/stage"
npm pack --dry-run --json 2>/dev/null | node -e '
  const files = JSON.parse(require("fs").readFileSync(0, "utf8"))[0].files.map((f) => f.path);
  for (const f of files) if (!/^prebuilds\/[^/]+\//.test(f)) console.log(f);' >"$work/files.txt"
tar -cf - -T "$work/files.txt" | tar -xf - -C "$work/stage"
(cd "$work/stage" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball=$(ls "$work"/torch-vbp-*.tgz)
say "$(basename "$tarball"): $(tar tzf "$tarball" | wc -l) files, $(du -h "$tarball" | cut -f1)"

# 2. A new app that depends on it.
mkdir -p "$work/app"
cd "$work/app"
printf '{ "name": "torch-vbp-install-check", "version": "1.0.0", "private": true }\n' >package.json
start=$(date +%s)
# --foreground-scripts shows the install script's messages; npm 11 runs it only once allowed, so when the
# install did not build the addon, approve the script and rebuild.
npm install --foreground-scripts --no-audit --no-fund --loglevel=error "$tarball" >"$work/install.log" 2>&1 || {
  cat "$work/install.log"
  exit 1
}
if [ ! -f node_modules/torch-vbp/build/Release/torch_vbp.node ]; then
  say "npm did not run the install script: approving it and rebuilding"
  npm install-scripts approve torch-vbp >>"$work/install.log" 2>&1
  npm rebuild --foreground-scripts torch-vbp >>"$work/install.log" 2>&1 || {
    cat "$work/install.log"
    exit 1
  }
fi
seconds=$(($(date +%s) - start))
say "installed and built from source in ${seconds} s (npm's downloads included)"
for expected in "building the native addon from source against LibTorch" "built and loaded"; do
  grep -q "$expected" "$work/install.log" || {
    cat "$work/install.log"
    say "FAIL: the install did not say '$expected'"
    exit 1
  }
done
grep "torch-vbp: " "$work/install.log" | sed 's/^/  /'
installed="$work/app/node_modules/torch-vbp"
[ -f "$installed/build/Release/torch_vbp.node" ] || { say "FAIL: no build/Release/torch_vbp.node in the installed package"; exit 1; }

# 3. The same numbers from both builds, and PyTorch's forward.
cat >"$work/probe.js" <<'EOF'
const [lib, modelFile, inputFile] = process.argv.slice(2);
const vbp = require(lib);
vbp.setNumThreads(1);
(async () => {
  const model = await vbp.loadModel(modelFile);
  const macs = await model.macs([1, 1, 28, 28]);
  const input = vbp.readNpy(inputFile);
  const output = await model.forward(input);
  process.stdout.write(JSON.stringify({ addon: vbp.versionInfo().addon, macs: macs.total, output: Array.from(output.data) }) + '\n');
  await model.dispose();
})();
EOF
model="$installed/models/deit_fmnist.pt"
/usr/bin/python3 - "$model" "$work" <<'EOF'
import sys, json, numpy as np, torch
torch.set_num_threads(1)
model, work = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
x = torch.rand(4, 1, 28, 28)
np.save(f"{work}/input.npy", x.numpy())
with torch.no_grad():
    y = torch.jit.load(model)(x)
json.dump(y.flatten().tolist(), open(f"{work}/pytorch.json", "w"))
EOF
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
node "$work/probe.js" "$installed" "$model" "$work/input.npy" >"$work/installed.json" 2>"$work/installed.err"
unset TORCH_VBP_ADDON
node "$work/probe.js" "$repo/dist/lib" "$model" "$work/input.npy" >"$work/checkout.json" 2>"$work/checkout.err"
node - "$work" <<'EOF'
const fs = require('fs');
const work = process.argv[2];
const installed = JSON.parse(fs.readFileSync(`${work}/installed.json`, 'utf8'));
const checkout = JSON.parse(fs.readFileSync(`${work}/checkout.json`, 'utf8'));
const pytorch = JSON.parse(fs.readFileSync(`${work}/pytorch.json`, 'utf8'));
const stderr = fs.readFileSync(`${work}/installed.err`, 'utf8');
const failures = [];
if (!installed.addon.includes(`${work}/app/node_modules/torch-vbp/build/Release`)) failures.push(`the installed package loaded ${installed.addon}`);
if (installed.macs !== checkout.macs) failures.push(`MACs: installed build ${installed.macs}, cmake-js build ${checkout.macs}`);
const scale = Math.max(...pytorch.map(Math.abs));
const worst = Math.max(...pytorch.map((v, i) => Math.abs(installed.output[i] - v)));
if (!(worst <= 1e-5 * scale)) failures.push(`forward: largest difference from PyTorch ${worst} (largest logit ${scale})`);
if (/RecordFunction|INTERNAL ASSERT/.test(stderr)) failures.push(`stderr: ${stderr.trim().split('\n')[0]}`);
console.log(`[check-install] MACs ${installed.macs} (cmake-js build ${checkout.macs}); forward vs PyTorch: ${worst.toExponential(2)} of the largest logit ${scale.toFixed(3)}`);
if (failures.length) {
  for (const f of failures) console.log(`[check-install] FAIL: ${f}`);
  process.exit(1);
}
console.log('[check-install] ok');
EOF
