/**
 * `npx keel`: the command-line client over Keel's HTTP API (KEEL_URL,
 * KEEL_API_KEY). Goals, approvals and memory, one file per noun; the HTTP
 * client and its errors in ./client.ts. Run through bin/keel.js.
 */
import { Command, CommanderError } from 'commander';
import { CliError, EXIT, clientOptionsFromEnv, createClient, type KeelClient } from './client';
import { registerApprovalCommands } from './approvals';
import type { Context } from './context';
import { printErr } from './format';
import { registerGoalCommands } from './goals';
import { registerMemoryCommands } from './memory';
import { version } from '../package.json';

export function buildProgram(): Command {
  const program = new Command('keel')
    .description('Keel from the command line: start goals, follow them, decide approvals, search memory')
    .version(version)
    .option('--url <url>', 'the Keel API (default: KEEL_URL, else http://localhost:3000)')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Environment:
  KEEL_URL          the API (default http://localhost:3000)
  KEEL_API_KEY      its bearer key (for an API on this machine, .keel/api-key is read when unset)
  KEEL_TIMEOUT_MS   how long one request may take (default 30000)
  EDITOR, VISUAL    for keel approvals edit

Exit codes: 0 done; 1 the API said no, the goal failed, or an edit was aborted;
2 bad usage; 3 the API is unreachable; 4 the API refused the key.`,
    )
    // Usage errors throw instead of exiting, so they get exit code 2 below.
    .exitOverride();

  let client: KeelClient | undefined;
  const ctx: Context = {
    client: () =>
      (client ??= createClient(clientOptionsFromEnv(process.env, { url: program.opts<{ url?: string }>().url }))),
  };
  registerGoalCommands(program, ctx);
  registerApprovalCommands(program, ctx);
  registerMemoryCommands(program, ctx);
  return program;
}

async function run(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; commander already printed what went wrong.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    if (err instanceof CliError) {
      printErr(`keel: ${err.message}`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
