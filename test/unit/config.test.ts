/** config/index.ts: the schema is the one source of every default. */
import { configSchema, defaultConfig, loadConfig } from '../../config/index';
import { resolveTemporalConfig } from '../../config/temporal';

describe('config', () => {
  it('gives every default from the schema, without reading the process environment', () => {
    const saved = process.env.KEEL_OPERATOR_NAME;
    process.env.KEEL_OPERATOR_NAME = 'Someone from the environment';
    try {
      const defaults = defaultConfig();
      expect(defaults.KEEL_OPERATOR_NAME).toBe('The Keel operator');
      expect(defaults.KEEL_WORKING_SET_TOKENS).toBe(1500);
      expect(defaults.KEEL_BODY_LIMIT).toBe('256kb');
      expect(defaults.KEEL_TASK_QUEUE).toBe('keel');
      // Temporal's settings come from @temporalio/envconfig (config/temporal.ts), resolved beside the schema.
      expect(defaults).toEqual({ ...configSchema.parse({}), temporal: resolveTemporalConfig({}) });
      expect(defaults.temporal).toMatchObject({
        address: '127.0.0.1:7233',
        namespace: 'default',
        addressConfigured: false,
      });
      // Settings without a default stay unset rather than invented.
      expect(defaults.SMTP_URL).toBeUndefined();
      expect(defaults.KEEL_API_KEY).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.KEEL_OPERATOR_NAME;
      else process.env.KEEL_OPERATOR_NAME = saved;
    }
  });

  it('returns a fresh object each time, so one caller cannot change another’s defaults', () => {
    const a = defaultConfig();
    a.KEEL_WORKING_SET_TOKENS = 9;
    expect(defaultConfig().KEEL_WORKING_SET_TOKENS).toBe(1500);
  });

  it('coerces the environment’s strings and names every bad variable at once', () => {
    expect(loadConfig({ KEEL_WORKING_SET_TOKENS: '800', PORT: '0' })).toMatchObject({
      KEEL_WORKING_SET_TOKENS: 800,
      PORT: 0,
    });
    expect(() => loadConfig({ KEEL_WORKING_SET_TOKENS: '10', PORT: 'http' })).toThrow(
      /^Invalid configuration: .*PORT.*KEEL_WORKING_SET_TOKENS|^Invalid configuration: .*KEEL_WORKING_SET_TOKENS.*PORT/,
    );
  });
});
