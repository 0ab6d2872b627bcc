/**
 * What a workflow costs the worker's sandbox, by bundle: replays the recorded
 * goal histories (test/replay/histories) many times through one replay worker
 * per bundle, in alternating rounds, and prints the CPU per replayed workflow
 * of each bundle and its ratio to the bundle that preloads nothing. A replay
 * runs the same workflow code a live worker runs, module evaluation included
 * (the sandbox evaluates the bundle's modules for every workflow it starts),
 * without a server, so the figure is the workflow thread's own.
 *
 *   npm run bench:sandbox [-- --repeat 20 --rounds 4]
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Runtime, Worker, bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { PRELOAD_MODULES, WORKFLOWS_PATH, keelBundlerOptions } from '../workers/bundle';
import { ROOT, latencies, ms } from './harness';

const HISTORIES = path.join(ROOT, 'test', 'replay', 'histories');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      repeat: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '4' },
      /** Only the bundles whose name starts with this (for a CPU profile of one: node --cpu-prof). */
      only: { type: 'string' },
    },
  });
  const repeat = Number(values.repeat);
  const rounds = Number(values.rounds);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const files = (await readdir(HISTORIES)).filter((f) => f.endsWith('.json')).sort();
  const histories = await Promise.all(
    files.map(async (f) => JSON.parse(await readFile(path.join(HISTORIES, f), 'utf8')) as unknown),
  );
  const logger = new DefaultLogger('WARN');
  // (Preloading zod alone was measured too and changed nothing: ratio 0.99.)
  const variants: { name: string; options: Partial<Parameters<typeof bundleWorkflowCode>[0]> }[] = [
    { name: 'no preload', options: {} },
    { name: 'store, zod per workflow', options: { preloadModules: [...PRELOAD_MODULES] } },
    { name: 'keel (workers/bundle.ts)', options: keelBundlerOptions() },
  ];
  const bundles = await Promise.all(
    variants
      .filter((v) => !values.only || v.name.startsWith(values.only))
      .map(async (v) => ({
        ...v,
        code: (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, ...v.options, logger })).code,
      })),
  );
  // Written out so a CPU profile's bundle lines can be read back to their modules.
  await mkdir(path.join(ROOT, '.keel', 'bench'), { recursive: true });
  for (const b of bundles)
    await writeFile(path.join(ROOT, '.keel', 'bench', `sandbox-${b.name.split(' ')[0]}.js`), b.code);
  const perWorkflow = new Map<string, number[]>(bundles.map((b) => [b.name, []]));
  console.log(`${histories.length} histories × ${repeat} per round, ${rounds} rounds, bundles in alternating order`);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? bundles : [...bundles].reverse();
    for (const b of order) {
      const runs = Array.from({ length: repeat }, (_, i) =>
        histories.map((history, j) => ({ workflowId: `replay-${round}-${i}-${j}`, history })),
      ).flat();
      const cpu = process.cpuUsage();
      let failed = 0;
      for await (const result of Worker.runReplayHistories({ workflowBundle: { code: b.code } }, runs)) {
        if (result.error) failed++;
      }
      const used = process.cpuUsage(cpu);
      if (failed > 0) throw new Error(`${b.name}: ${failed} of ${runs.length} replays failed`);
      perWorkflow.get(b.name)!.push((used.user + used.system) / 1000 / runs.length);
    }
  }
  const baseline = latencies(perWorkflow.get(bundles[0].name)!).p50;
  for (const b of bundles) {
    const l = latencies(perWorkflow.get(b.name)!);
    console.log(
      `${b.name}: CPU per replayed workflow p50 ${l.p50.toFixed(2)} ms (rounds: ${perWorkflow
        .get(b.name)!
        .map((v) => v.toFixed(2))
        .join(', ')}), ratio to ${bundles[0].name} ${(l.p50 / baseline).toFixed(2)}`,
    );
  }
  console.log(
    `preloaded: ${PRELOAD_MODULES.map((m) => path.relative(ROOT, m) || m).join(', ')} (${ms(baseline)} ms per workflow with ${bundles[0].name})`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
