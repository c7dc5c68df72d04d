#!/usr/bin/env node
'use strict';
// The `vbp` command (see `vbp --help`); the implementation is lib/cli/main.ts, compiled to dist/.
// Image decoding runs on libuv's pool, 4 threads unless set before its first use: two decodes per core (the
// default of --decode-threads), and two more threads for the model's jobs and file reads.
if (process.env.UV_THREADPOOL_SIZE === undefined) {
  const cores = require('node:os').availableParallelism?.() ?? require('node:os').cpus().length;
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, 2 * cores + 2));
}
require('../dist/lib/cli/main')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
