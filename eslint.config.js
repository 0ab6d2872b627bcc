// ESLint flat config. Two things matter most: no floating promises anywhere (a forgotten await loses errors
// and, in workflows, ordering), and workflow code that stays deterministic and bundleable for Temporal's
// sandbox — no Node built-ins, no I/O-side modules, no wall clock or randomness.
const { builtinModules } = require('node:module');
const { defineConfig } = require('eslint/config');
const tseslint = require('typescript-eslint');

const nodeBuiltins = [...new Set(builtinModules.map((name) => name.replace(/^node:/, '')))];

// Code bundled into the workflow sandbox: the workflows, shared contracts, and the pure tool specs and registry.
const SANDBOXED = [
  'workflows/**/*.ts',
  'shared/**/*.ts',
  'tools/*/spec.ts',
  'tools/spec.ts',
  'tools/registry.ts',
  'models/prices.ts',
  'models/failures.ts',
  // Bundled into the sandbox as the failure converter when payload encryption is on.
  'codec/failure-converter.ts',
];

const sandboxMessage = 'Workflow code runs in a deterministic sandbox: do I/O in an activity (activities/) instead.';

module.exports = defineConfig(
  { ignores: ['generated/', 'node_modules/', 'dist/', 'coverage/', '.keel/'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        // Plain JS files are outside tsconfig.json (no allowJs); they get a default program.
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.js', 'bin/*.js'] },
        tsconfigRootDir: __dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // `_`-prefixed names are deliberately unused (Express handlers, destructuring).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests poke at loosely typed SDK internals and fixtures; `any` there is a convenience, not a leak.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Plain CommonJS that runs before node_modules exist (scripts/setup.js) or is loaded by tools.
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: SANDBOXED,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: sandboxMessage })),
            ...['pg', 'prisma', 'express', 'nodemailer', 'openai'].map((name) => ({ name, message: sandboxMessage })),
            ...['@temporalio/activity', '@temporalio/client', '@temporalio/worker', '@temporalio/testing'].map(
              (name) => ({ name, message: 'Not available inside the workflow sandbox; use @temporalio/workflow.' }),
            ),
          ],
          patterns: [
            { group: ['node:*'], message: sandboxMessage },
            { group: ['@prisma/*', 'pg/*', '@qdrant/*'], message: sandboxMessage },
            {
              regex:
                '^(\\./)?(\\.\\./)+(activities|lib|generated|api|workers|scripts|state|memory|models(?!/(prices|failures)$)|planner|connectors|commands|config|db)(/|$)',
              message:
                'Workflows and shared code may import only workflows/, shared/, tool specs and model prices (types from activities via `import type`).',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    // shared/ is bundled into the workflow sandbox too, so it obeys the same determinism rules.
    files: SANDBOXED,
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'process', message: sandboxMessage },
        { name: 'setTimeout', message: 'Use sleep() or condition() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop from @temporalio/workflow.' },
        { name: 'setImmediate', message: 'Not available in the workflow sandbox.' },
        { name: 'Buffer', message: 'Not available in the workflow sandbox.' },
        { name: 'require', message: 'Use import; the workflow bundle is built by the worker.' },
        { name: '__dirname', message: sandboxMessage },
        { name: '__filename', message: sandboxMessage },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Read time from workflow state or pass it in the input.' },
        {
          object: 'Math',
          property: 'random',
          message: 'Use uuid4() from @temporalio/workflow, or pass randomness in.',
        },
        { object: 'process', message: sandboxMessage },
      ],
    },
  },
);
