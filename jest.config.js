/** Jest runs TypeScript through SWC; one Temporal dev server and database per test file. */
const swc = {
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
};

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  globalSetup: '<rootDir>/test/global-setup.ts',
  testTimeout: 120_000,
  // Two cores: each test file starts its own dev server and worker.
  maxWorkers: 2,
};
