#!/usr/bin/env node
// prebuildify drives node-gyp; this stands in for it and builds with cmake-js (CMakeLists.txt), the
// project's build of record. prebuildify then takes build/Release/torch_vbp.node into prebuilds/.
// Arguments node-gyp would get (rebuild --target=... --devdir=... --release) are not needed: the addon
// is N-API, so one build serves every Node.js version.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'build', '--out', 'build'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);

// prebuildify strips the file in place, then moves it. Give it a copy with its own inode, so that processes
// that have the local build loaded (dlopen maps the file) never see it change under them.
const addon = path.join(root, 'build', 'Release', 'torch_vbp.node');
const copy = `${addon}.tmp-${process.pid}`;
fs.copyFileSync(addon, copy);
fs.renameSync(copy, addon);
