// One thread for OpenBLAS and OpenMP in the real environment (jest gives tests a copy of process.env, which
// native libraries never read), as the Python reference runs, so results compare bit for bit.
require('./test/support/pin-threads')(process.env);

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // timm's real models need a LibTorch 2.x build and a Python with timm: npm run test:compat runs them.
  testPathIgnorePatterns: ['/node_modules/', ...(process.env.VBP_TIMM_PYTHON ? [] : ['/test/compat/'])],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
  // Fixtures and PyTorch reference outputs are made once per run by test/python (see test/global-setup.ts).
  globalSetup: '<rootDir>/test/global-setup.ts',
  setupFiles: ['<rootDir>/test/setup-env.ts'],
  testTimeout: 180000,
  // One test file at a time: the machines have 2 cores, LibTorch uses them, and the prebuild test relinks
  // the addon while it runs.
  maxWorkers: 1,
};
