/**
 * `npm run test:embedded`: the store-facing tests on the embedded database (PGlite, one in-memory instance
 * per test database, test/helpers/db.ts). A representative subset, not the whole suite: every module that
 * reads or writes the store is covered, and the rest (workflow logic, HTTP guards, the CLI, Slack, the
 * browser inbox, fault and durability runs) does not depend on which PostgreSQL answers.
 */
const base = require('./jest.config');

process.env.KEEL_TEST_DATABASE = 'embedded';

module.exports = {
  ...base,
  testMatch: [
    // migrations (runner, schema vs schema.prisma, rollback), metrics SQL, rate-limit windows
    '<rootDir>/test/db/*.test.ts',
    // canonical state: goals, plans, steps, events through the API and the goal workflow
    '<rootDir>/test/integration/api.test.ts',
    '<rootDir>/test/workflow/goal.test.ts',
    // events and rebuild from the log
    '<rootDir>/test/integration/rebuild.test.ts',
    // memory: items, embeddings cache, the embedded vector index, retrieval, re-embedding
    '<rootDir>/test/memory/*.test.ts',
    // approvals bound to their snapshot, decisions, trust
    '<rootDir>/test/integration/approval-binding.test.ts',
    // side effects: intent and commit in side_effects, connectors, the model cache
    '<rootDir>/test/workflow/side-effect-tools.test.ts',
    '<rootDir>/test/unit/{activity-errors,email,email-reply,model-cache,model-tools,prompt-fit,rate-limited-tools,slack-post,tool-activities,webhook-call}.test.ts',
    // npm start with no PostgreSQL reachable
    '<rootDir>/test/integration/embedded-start.test.ts',
  ],
};
