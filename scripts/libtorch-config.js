#!/usr/bin/env node
// Finds LibTorch for binding.gyp (node-gyp-build's install fallback), in the same order as CMakeLists.txt:
//   1. LIBTORCH (a LibTorch folder) or Torch_DIR (the folder holding TorchConfig.cmake);
//   2. the LibTorch inside a Python torch ($PYTHON, python3, /usr/bin/python3);
//   3. the system (Debian/Ubuntu libtorch-dev, /usr/local/libtorch, /opt/libtorch).
// Usage: libtorch-config.js include|libdir|libs|defines|cxxstd|sources|describe
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');

function fromPrefix(prefix, how) {
  const include = path.join(prefix, 'include');
  const candidates = [path.join(prefix, 'lib'), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
  const libdir = candidates.find((dir) => fs.existsSync(path.join(dir, 'libtorch.so')) || fs.existsSync(path.join(dir, 'libtorch.dylib')));
  if (!fs.existsSync(path.join(include, 'torch', 'script.h')) || !libdir) return undefined;
  return { prefix, include, libdir, how };
}

// A Python torch counts only when it ships LibTorch's CMake config, as in CMakeLists.txt (a pip wheel does;
// Debian's python3-torch does not, and the system LibTorch is found next).
function pythonPrefix() {
  const pythons = [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean);
  const query = 'import torch, torch.utils, os; print(os.path.dirname(torch.__file__)); print(torch.utils.cmake_prefix_path)';
  for (const python of pythons) {
    const r = spawnSync(python, ['-c', query], { encoding: 'utf8' });
    const [packageDir, cmakePrefix] = r.status === 0 ? r.stdout.trim().split('\n') : [];
    if (packageDir && cmakePrefix && fs.existsSync(path.join(cmakePrefix, 'Torch', 'TorchConfig.cmake'))) {
      const found = fromPrefix(packageDir, `Python torch (${python})`);
      if (found) return found;
    }
  }
  return undefined;
}

// LibTorch's folder from the folder of TorchConfig.cmake: share/cmake/Torch (a download, a pip wheel) or
// lib/<arch>/cmake/Torch (Debian).
function fromTorchDir(torchDir) {
  for (const up of [['..', '..', '..'], ['..', '..', '..', '..']]) {
    const found = fromPrefix(path.resolve(torchDir, ...up), `Torch_DIR=${torchDir}`);
    if (found) return found;
  }
  return undefined;
}

function locate() {
  if (process.env.LIBTORCH) return fromPrefix(process.env.LIBTORCH, `LIBTORCH=${process.env.LIBTORCH}`);
  if (process.env.Torch_DIR) return fromTorchDir(process.env.Torch_DIR);
  return pythonPrefix() ?? ['/usr', '/usr/local/libtorch', '/opt/libtorch'].map((p) => fromPrefix(p, 'system paths')).find(Boolean);
}

// The C++ ABI LibTorch was built with, from its CMake config (-D_GLIBCXX_USE_CXX11_ABI=0 or 1).
function abiDefine(found) {
  const configs = [path.join(found.prefix, 'share/cmake/Torch/TorchConfig.cmake'), path.join(found.libdir, 'cmake/Torch/TorchConfig.cmake')];
  for (const file of configs) {
    if (!fs.existsSync(file)) continue;
    const match = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(fs.readFileSync(file, 'utf8'));
    if (match) return `_GLIBCXX_USE_CXX11_ABI=${match[1]}`;
  }
  return undefined;
}

// The C++ standard the LibTorch headers need, by the rule of cmake/libtorch-cxx-standard.cmake.
function cxxStandard(found) {
  const aten = path.join(found.include, 'ATen', 'ATen.h');
  return fs.existsSync(aten) && fs.readFileSync(aten, 'utf8').includes('C++20 or later') ? 'c++20' : 'c++17';
}

// The definitions LibTorch's CMake config gives everything that links torch_cpu (USE_DISTRIBUTED,
// USE_C10D_GLOO, ...: c10d's headers depend on them), as CMake passes them to the cmake-js build.
function torchDefinitions(found) {
  const configs = [
    path.join(found.prefix, 'share/cmake/Caffe2/Caffe2Targets.cmake'),
    path.join(found.libdir, 'cmake/Caffe2/Caffe2Targets.cmake'),
  ];
  for (const file of configs) {
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    const block = /set_target_properties\(torch_cpu PROPERTIES([\s\S]*?)\n\)/.exec(text);
    const match = block && /INTERFACE_COMPILE_DEFINITIONS "([^"]*)"/.exec(block[1]);
    if (match) return match[1].split(';').filter((d) => /^[A-Za-z_][A-Za-z0-9_]*(=\w+)?$/.test(d));
  }
  return [];
}

// Gloo's headers beside LibTorch's and a LibTorch built with c10d's Gloo, by the rule of CMakeLists.txt (Debian:
// libgloo-dev in /usr/include).
function withGloo(found) {
  return (
    torchDefinitions(found).includes('USE_C10D_GLOO') &&
    fs.existsSync(path.join(found.include, 'gloo', 'config.h')) &&
    fs.existsSync(path.join(found.include, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp'))
  );
}

// LibTorch's version from its headers ('' when they do not say).
function torchVersion(found) {
  const header = path.join(found.include, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h');
  if (!fs.existsSync(header)) return '';
  const text = fs.readFileSync(header, 'utf8');
  const part = (name) => (new RegExp(`#define TORCH_VERSION_${name} (\\d+)`).exec(text) ?? [])[1];
  return ['MAJOR', 'MINOR', 'PATCH'].map(part).every(Boolean) ? ['MAJOR', 'MINOR', 'PATCH'].map(part).join('.') : '';
}

const what = process.argv[2];
if (what === 'sources') {
  for (const dir of ['native/core', 'native/bindings']) {
    for (const file of fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.cc')).sort()) console.log(`${dir}/${file}`);
  }
  process.exit(0);
}

const found = locate();
if (!found) {
  console.error(
    'torch-vbp: LibTorch not found. Install it, then build again. One of:\n' +
      '  * Debian/Ubuntu:  sudo apt-get install libtorch-dev libopenblas0-pthread\n' +
      '  * a LibTorch download: export LIBTORCH=/path/to/libtorch\n' +
      '  * a pip torch:    export PYTHON=/path/to/python   (the one that can `import torch`)\n' +
      '  * or: export Torch_DIR=/path/to/share/cmake/Torch',
  );
  process.exit(1);
}
/** The system's libjpeg(-turbo), for the native JPEG path (without it, images decode through sharp only). */
function withJpeg() {
  const includes = ['/usr/include', '/usr/local/include', '/opt/homebrew/include'];
  return includes.some((dir) => fs.existsSync(path.join(dir, 'jpeglib.h')));
}

const cudaLibs = ['torch_cuda', 'c10_cuda'].filter((lib) => fs.existsSync(path.join(found.libdir, `lib${lib}.so`)));
switch (what) {
  case 'include':
    console.log([found.include, path.join(found.include, 'torch/csrc/api/include')].join('\n'));
    break;
  case 'libdir':
    console.log(found.libdir);
    break;
  case 'libs':
    console.log(
      [`-L${found.libdir}`, '-ltorch', '-ltorch_cpu', '-lc10', ...cudaLibs.map((l) => `-l${l}`), ...(withJpeg() ? ['-ljpeg'] : [])].join('\n'),
    );
    break;
  case 'defines':
    // NDEBUG as in LibTorch's release builds and CMakeLists.txt: at::RecordFunction's layout depends on it.
    console.log(
      [
        'NDEBUG',
        abiDefine(found),
        ...torchDefinitions(found),
        `VBP_WITH_GLOO=${withGloo(found) ? 1 : 0}`,
        `VBP_WITH_JPEG=${withJpeg() ? 1 : 0}`,
      ]
        .filter(Boolean)
        .join('\n'),
    );
    break;
  case 'cxxstd':
    console.log(`-std=${cxxStandard(found)}`);
    break;
  case 'describe':
    console.log(JSON.stringify({ ...found, version: torchVersion(found), abi: abiDefine(found), cxxstd: cxxStandard(found), cudaLibs }));
    break;
  default:
    console.error('usage: libtorch-config.js include|libdir|libs|defines|cxxstd|sources|describe');
    process.exit(2);
}
