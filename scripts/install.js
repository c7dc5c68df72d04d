#!/usr/bin/env node
// npm's install script for torch-vbp (package.json "install"). Keeps an addon that loads (a local build, or
// the prebuild for this platform); otherwise builds binding.gyp with node-gyp against the LibTorch that
// scripts/libtorch-config.js finds, and says so while it works: a from-source build takes minutes.
//
// npm runs a dependency's install script only when allowed (npm 11: `npm install-scripts approve torch-vbp`)
// and shows its output only on failure (or with --foreground-scripts), so the messages also go to the
// terminal (/dev/tty) when there is one, and the full compiler output to install.log beside this package.json.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
// Not under build/: node-gyp rebuild removes that folder first.
const log = path.join(root, 'install.log');
const startedAt = Date.now();

let tty;
try {
  if (!process.stderr.isTTY) tty = fs.openSync('/dev/tty', 'w');
} catch {
  tty = undefined;
}

function say(message) {
  const line = `torch-vbp: ${message}\n`;
  process.stderr.write(line);
  if (tty !== undefined) {
    try {
      fs.writeSync(tty, line);
    } catch {
      tty = undefined;
    }
  }
}

function elapsed() {
  const s = Math.round((Date.now() - startedAt) / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function loadsAlready() {
  try {
    const load = require('node-gyp-build');
    const file = load.resolve(root);
    require(file);
    return file;
  } catch {
    return undefined;
  }
}

function describeLibTorch() {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'libtorch-config.js'), 'describe'], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    say('cannot build the native addon: no LibTorch found (see above; README "Installing as a dependency")');
    process.exit(1);
  }
  return JSON.parse(r.stdout);
}

// npm tells its scripts where its own node-gyp is; outside npm, node-gyp from PATH.
function nodeGyp() {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && fs.existsSync(bundled)) return [process.execPath, bundled];
  return ['node-gyp'];
}

function build(torch) {
  const sources = spawnSync(process.execPath, [path.join(__dirname, 'libtorch-config.js'), 'sources'], { encoding: 'utf8' }).stdout.trim().split('\n').length;
  say(
    `no prebuild fits this machine: building the native addon from source against LibTorch ${torch.version || '(version unknown)'} ` +
      `at ${torch.libdir} (${torch.how}), ${sources} C++ files, on every core (4-5 minutes measured with 2) ` +
      `(compiler output: ${path.relative(process.cwd(), log) || log}). Another LibTorch: set LIBTORCH, Torch_DIR or PYTHON and run npm rebuild torch-vbp.`,
  );
  const out = fs.openSync(log, 'w');
  const [command, ...args] = nodeGyp();
  const child = spawn(command, [...args, 'rebuild', '--jobs', 'max'], { cwd: root, stdio: ['ignore', out, out], env: process.env });
  // A heartbeat with the files compiled so far, counted from node-gyp's "CXX(target)" lines in the log.
  const heartbeat = setInterval(() => {
    let text = '';
    try {
      text = fs.readFileSync(log, 'utf8');
    } catch {
      // not written yet
    }
    const compiled = (text.match(/CXX\(target\)/g) ?? []).length;
    say(`still building (${elapsed()}): ${Math.min(compiled, sources)} of ${sources} files compiled`);
  }, 30_000);
  child.on('error', (error) => {
    clearInterval(heartbeat);
    say(`cannot run node-gyp (${error.message}): install a C++ compiler, make and python3, then npm rebuild torch-vbp`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    clearInterval(heartbeat);
    fs.closeSync(out);
    if (code !== 0) {
      const tail = fs.readFileSync(log, 'utf8').split('\n').slice(-40).join('\n');
      process.stderr.write(`${tail}\n`);
      say(`the build failed (${signal ?? `exit code ${code}`}) after ${elapsed()}; the whole log is ${log}`);
      process.exit(code ?? 1);
    }
    const file = loadsAlready();
    if (!file) {
      say(`built in ${elapsed()}, but the addon does not load: see README "Building and LibTorch"`);
      process.exit(1);
    }
    say(`built and loaded ${path.relative(root, file)} in ${elapsed()}`);
  });
}

const existing = loadsAlready();
if (existing) {
  say(`using ${path.relative(root, existing)}`);
} else {
  build(describeLibTorch());
}
