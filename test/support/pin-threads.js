// One place for the tests' thread pinning: OpenBLAS and OpenMP read these only when the library loads, so
// they are set in the real environment before anything loads the addon or spawns a child (jest.config.js)
// and in jest's copy of it that test files see (test/setup-env.ts), as the Python reference runs.
'use strict';
module.exports = function pinThreads(env) {
  env.OPENBLAS_NUM_THREADS = '1';
  env.OMP_NUM_THREADS = '1';
  return env;
};
