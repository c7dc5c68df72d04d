#!/usr/bin/env node
// Reads the sanitizer logs of scripts/sanitize.sh (one file per process) and fails on what is torch-vbp's:
// any AddressSanitizer or UndefinedBehaviorSanitizer error, and any leak allocated by our code.
//
// Node.js does not free V8's heap at exit, and the Python reference processes the tests start leak their own
// interpreter state, so LeakSanitizer's raw report is mostly theirs. A leak counts as ours when the first
// frame above the allocator is in the addon (its sources or node-addon-api's inlined into it) or in LibTorch
// called from the addon (the stack holds an addon frame), and it is not one of the allocations kept on purpose
// (test/support/lsan.supp).
//   node scripts/sanitizer-report.js LOG_DIR
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dir = process.argv[2];
const suppressions = fs
  .readFileSync(path.join(__dirname, '..', 'test', 'support', 'lsan.supp'), 'utf8')
  .split('\n')
  .filter((line) => line.startsWith('leak:'))
  .map((line) => line.slice('leak:'.length).trim());

const isAllocator = (frame) => /asan_|ubsan_|__interceptor_|operator new|operator delete|\bmalloc\b|\bcalloc\b|\brealloc\b|posix_memalign|__libc_/.test(frame);
const isOurs = (frame) => /torch_vbp\.node|\/native\/(core|bindings)\/|node-addon-api\/napi/.test(frame);
const isLibTorch = (frame) => /lib(torch|c10)[\w.-]*\.so|\b(c10|at|torch|caffe2)::/.test(frame);

let errors = 0;
let ours = 0;
let theirs = 0;
const files = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  // Errors other than leaks: always ours to look at (only the addon is instrumented).
  for (const match of text.matchAll(/==\d+==ERROR: AddressSanitizer: .*|.*runtime error: .*/g)) {
    errors++;
    process.stdout.write(`${path.basename(file)}:\n${text.slice(match.index, match.index + 3000)}\n\n`);
  }
  for (const block of text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1)) {
    const frames = block.split('\n').filter((line) => /^\s+#\d+ /.test(line));
    const first = frames.find((frame) => !isAllocator(frame)) ?? '';
    const mine = (isOurs(first) || (isLibTorch(first) && frames.some(isOurs))) && !suppressions.some((s) => frames.some((f) => f.includes(s)));
    if (!mine) {
      theirs++;
      continue;
    }
    ours++;
    process.stdout.write(`${path.basename(file)}: ${block.split('\n')[0]}\n${frames.slice(0, 12).join('\n')}\n\n`);
  }
}
process.stdout.write(`sanitize: ${files.length} process logs; ${errors} sanitizer errors; ${ours} leaks of ours; ${theirs} leaks of Node.js, V8, Python or kept on purpose (not counted)\n`);
process.exit(errors + ours > 0 ? 1 : 0);
