/**
 * What `npm run worker` runs (KEEL_WORKER_ROLE, KEEL_MODEL_TASK_QUEUE, KEEL_MODEL_RATE_PER_SECOND), and which
 * activities the model task queue gets: the tools whose preset is `model`, which every tool that declares a
 * model call has.
 */
import { loadConfig } from '../../config/index';
import { TOOLS } from '../../tools/registry';
import { workerRoles } from '../../workers/worker';

describe('worker roles', () => {
  it('runs the goal worker alone by default, with the model-call worker beside it once the queue is set', () => {
    expect(workerRoles(loadConfig({}))).toEqual(['goals']);
    expect(workerRoles(loadConfig({ KEEL_MODEL_TASK_QUEUE: 'keel-models' }))).toEqual(['goals', 'model']);
  });

  it('runs one side when asked', () => {
    const queue = { KEEL_MODEL_TASK_QUEUE: 'keel-models' };
    expect(workerRoles(loadConfig({ ...queue, KEEL_WORKER_ROLE: 'goals' }))).toEqual(['goals']);
    expect(workerRoles(loadConfig({ ...queue, KEEL_WORKER_ROLE: 'model' }))).toEqual(['model']);
  });

  it('refuses a model worker without a model task queue, naming the setting', () => {
    expect(() => workerRoles(loadConfig({ KEEL_WORKER_ROLE: 'model' }))).toThrow(/KEEL_MODEL_TASK_QUEUE/);
    // An empty queue is no queue: docker compose passes set-but-empty variables through.
    expect(() => workerRoles(loadConfig({ KEEL_WORKER_ROLE: 'model', KEEL_MODEL_TASK_QUEUE: ' ' }))).toThrow(
      /KEEL_MODEL_TASK_QUEUE/,
    );
  });

  it('parses the rate and the role, naming a bad value', () => {
    expect(loadConfig({ KEEL_MODEL_RATE_PER_SECOND: '2.5' }).KEEL_MODEL_RATE_PER_SECOND).toBe(2.5);
    expect(loadConfig({}).KEEL_MODEL_RATE_PER_SECOND).toBeUndefined();
    expect(() => loadConfig({ KEEL_MODEL_RATE_PER_SECOND: '0' })).toThrow(/KEEL_MODEL_RATE_PER_SECOND/);
    expect(() => loadConfig({ KEEL_WORKER_ROLE: 'planner' })).toThrow(/KEEL_WORKER_ROLE/);
  });
});

describe('the model task queue gets every tool that calls a model', () => {
  it.each(
    Object.values(TOOLS)
      .filter((t) => t.model !== undefined)
      .map((t) => [t.name, t] as const),
  )('%s declares a model call and runs on the model preset', (_name, tool) => {
    expect(tool.preset).toBe('model');
  });
});
