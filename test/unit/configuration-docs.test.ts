/**
 * Every environment variable the code reads is documented in .env.example and in README's Configuration
 * tables, and every variable documented there is one the code reads (issue 11). "The code" is the zod
 * schema (config/index.ts), Temporal's envconfig variables (config/temporal.ts) and every
 * `process.env.X` / `env.X` in the source files outside test/ (test/helpers/env-docs.ts); the platform's own
 * variables (PATH, HOME, EDITOR, …) are listed there with why they are not Keel settings.
 */
import {
  PLATFORM_VARIABLES,
  variablesInComposeKeelEnv,
  variablesInEnvExample,
  variablesInReadmeTable,
  variablesReadByCode,
  variablesReadBySource,
} from '../helpers/env-docs';

const code = variablesReadByCode();
const sorted = (names: Iterable<string>) => [...names].sort();

it('finds the variables the code reads: the schema, Temporal, and reads scattered in the source', () => {
  // A scan that found nothing would make every check below pass; these are read in each of the three ways.
  expect(code).toEqual(expect.any(Set));
  for (const name of ['DATABASE_URL', 'TEMPORAL_CONFIG_FILE', 'TEMPORAL_API_KEY', 'KEEL_URL', 'TEMPORAL_CLI']) {
    expect(code.has(name)).toBe(true);
  }
  const source = variablesReadBySource();
  expect(source.get('KEEL_URL')).toEqual(['cli/client.ts']);
  expect(source.get('PATH')).toEqual(expect.arrayContaining(['scripts/temporal-cli.js']));
});

it('documents every variable the code reads in .env.example', () => {
  const documented = variablesInEnvExample();
  expect(sorted([...code].filter((name) => !documented.has(name)))).toEqual([]);
});

it("documents every variable the code reads in README's Configuration tables", () => {
  const documented = variablesInReadmeTable();
  expect(sorted([...code].filter((name) => !documented.has(name)))).toEqual([]);
});

it('documents no variable the code does not read (.env.example, README, docker-compose Keel env)', () => {
  expect(sorted([...variablesInEnvExample()].filter((name) => !code.has(name)))).toEqual([]);
  expect(sorted([...variablesInReadmeTable()].filter((name) => !code.has(name)))).toEqual([]);
  expect(sorted([...variablesInComposeKeelEnv()].filter((name) => !code.has(name)))).toEqual([]);
});

it('leaves out only platform variables that the code really reads', () => {
  const source = variablesReadBySource();
  expect(Object.keys(PLATFORM_VARIABLES).filter((name) => !source.has(name))).toEqual([]);
});

it('passes every Temporal connection variable through docker-compose to the worker and the API', () => {
  const compose = variablesInComposeKeelEnv();
  const temporal = [...code].filter((name) => name.startsWith('TEMPORAL_') && !name.includes('<'));
  const notPassed = temporal.filter(
    // Not for containers: the CLI binary is setup's; host verification cannot be turned off in this SDK.
    (name) => !compose.has(name) && !['TEMPORAL_CLI', 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION'].includes(name),
  );
  expect(notPassed).toEqual([]);
});
