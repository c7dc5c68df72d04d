// Pins LibTorch and OpenBLAS to one thread before the addon loads (see test/support/pin-threads.js).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pinThreads = require('./support/pin-threads') as (env: NodeJS.ProcessEnv) => NodeJS.ProcessEnv;
pinThreads(process.env);
