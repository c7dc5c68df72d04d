#!/usr/bin/env node
'use strict';
// The `vbp` command (see `vbp --help`); the implementation is lib/cli/main.ts, compiled to dist/.
require('../dist/lib/cli/main')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
