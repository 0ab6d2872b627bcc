/**
 * codec/: the AES-256-GCM payload codec, its keys from KEEL_CODEC_KEY, and the
 * codec endpoint (api/codec.ts) served by the real app over real HTTP: the
 * remote codec protocol, its authentication and its CORS.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, DefaultFailureConverter, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { createApp } from '../../api/app';
import {
  AesGcmPayloadCodec,
  ENCODING_ENCRYPTED,
  METADATA_KEY_ID,
  PayloadDecryptionError,
  codecDataConverter,
  codecUiToken,
  parseCodecKeys,
  withholdingLogger,
  WITHHELD,
  payloadsFromJson,
  payloadsToJson,
} from '../../codec';
import { loadConfig } from '../../config';
import { serveApp, type ServedApi } from '../helpers/engine';

const keyText = () => randomBytes(32).toString('base64');
const k1 = `k1:${keyText()}`;
const k2 = `k2:${keyText()}`;
const SECRET = 'Invoice for ada@example.com: 4,200 EUR — confidential';

const toPayload = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const fromPayload = (p: Payload) => defaultPayloadConverter.fromPayload(p);
const bytesText = (p: Payload) =>
  Buffer.concat([
    ...Object.entries(p.metadata ?? {}).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v ?? [])]),
    Buffer.from(p.data ?? []),
  ]).toString('latin1');
const meta = (p: Payload, key: string) => Buffer.from(p.metadata?.[key] ?? []).toString('utf8');

describe('AesGcmPayloadCodec', () => {
  const codec = new AesGcmPayloadCodec(parseCodecKeys(k1));

  it('round-trips payloads, metadata included, and leaves no plaintext in what it encodes', async () => {
    const payloads = [toPayload({ title: SECRET, n: 3 }), toPayload('plain text'), toPayload(undefined)];
    const encoded = await codec.encode(payloads);
    expect(encoded).toHaveLength(3);
    for (const p of encoded) {
      expect(meta(p, 'encoding')).toBe(ENCODING_ENCRYPTED);
      expect(meta(p, METADATA_KEY_ID)).toBe('k1');
      expect(bytesText(p)).not.toContain('ada@example.com');
      expect(bytesText(p)).not.toContain('json/plain');
    }
    const decoded = await codec.decode(encoded);
    expect(decoded.map(fromPayload)).toEqual([{ title: SECRET, n: 3 }, 'plain text', undefined]);
    expect(meta(decoded[0], 'encoding')).toBe('json/plain');
  });

  it('uses a fresh IV for every payload: the same value never encrypts to the same bytes', async () => {
    const [a, b] = await codec.encode([toPayload(SECRET), toPayload(SECRET)]);
    expect(Buffer.from(a.data!).equals(Buffer.from(b.data!))).toBe(false);
    expect(Buffer.from(a.data!).subarray(0, 12).equals(Buffer.from(b.data!).subarray(0, 12))).toBe(false);
  });

  it('rotates keys: encrypts with the first key and still decrypts payloads of the older one', async () => {
    const old = await new AesGcmPayloadCodec(parseCodecKeys(k1)).encode([toPayload(SECRET)]);
    const rotated = new AesGcmPayloadCodec(parseCodecKeys(`${k2},${k1}`));
    expect(rotated.currentKeyId).toBe('k2');
    const fresh = await rotated.encode([toPayload(SECRET)]);
    expect(meta(fresh[0], METADATA_KEY_ID)).toBe('k2');
    expect((await rotated.decode([...old, ...fresh])).map(fromPayload)).toEqual([SECRET, SECRET]);
    // Dropping k1 too early is named, not a garbled payload.
    await expect(new AesGcmPayloadCodec(parseCodecKeys(k2)).decode(old)).rejects.toThrow(
      /key id "k1", which is not in KEEL_CODEC_KEY \(it has k2\)/,
    );
  });

  it('refuses tampered ciphertext, a tampered tag and a payload moved under another key id', async () => {
    const [sealed] = await codec.encode([toPayload(SECRET)]);
    const flip = (i: number) => {
      const data = Buffer.from(sealed.data!);
      data[i] ^= 1;
      return { ...sealed, data: new Uint8Array(data) };
    };
    for (const tampered of [flip(20), flip(sealed.data!.length - 1), flip(0)]) {
      await expect(codec.decode([tampered])).rejects.toThrow(PayloadDecryptionError);
      await expect(codec.decode([tampered])).rejects.toThrow(/key id "k1" failed authentication/);
    }
    const truncated = { ...sealed, data: sealed.data!.subarray(0, 10) };
    await expect(codec.decode([truncated])).rejects.toThrow(/truncated/);
    // The same key material under two ids: the id is authenticated data, so relabelling fails.
    const twoIds = parseCodecKeys(`${k1},k9:${k1.slice(3)}`);
    const relabelled = {
      ...sealed,
      metadata: { ...sealed.metadata, [METADATA_KEY_ID]: new TextEncoder().encode('k9') },
    };
    await expect(new AesGcmPayloadCodec(twoIds).decode([relabelled])).rejects.toThrow(/"k9" failed authentication/);
  });

  it('names an unknown key id', async () => {
    const [sealed] = await new AesGcmPayloadCodec(parseCodecKeys(`old-2024:${keyText()}`)).encode([toPayload(1)]);
    await expect(codec.decode([sealed])).rejects.toThrow(
      'payload encrypted with key id "old-2024", which is not in KEEL_CODEC_KEY (it has k1)',
    );
  });

  it('passes payloads without the encrypted marker through unchanged (histories from before encryption)', async () => {
    const plain = [toPayload({ title: SECRET }), { metadata: { encoding: new TextEncoder().encode('binary/null') } }];
    const decoded = await codec.decode(plain);
    expect(decoded[0]).toBe(plain[0]);
    expect(decoded[1]).toBe(plain[1]);
  });

  it('gives a data converter that encrypts failures’ messages too, and none without keys', () => {
    expect(codecDataConverter(undefined)).toBeUndefined();
    const converter = codecDataConverter(parseCodecKeys(k1))!;
    expect(converter.payloadCodecs![0]).toBeInstanceOf(AesGcmPayloadCodec);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { failureConverter } = require(converter.failureConverterPath!) as {
      failureConverter: DefaultFailureConverter;
    };
    const failure = failureConverter.errorToFailure(new Error(SECRET), defaultPayloadConverter);
    expect(failure.message).not.toContain('ada@example.com');
    expect(failure.encodedAttributes).toBeDefined();
  });
});

describe('withholdingLogger', () => {
  it('keeps messages, numbers and identifiers, and withholds error messages and free text', () => {
    const entries: LogEntry[] = [];
    const logger = withholdingLogger(new DefaultLogger('DEBUG', (e) => entries.push(e)));
    const failure = ApplicationFailure.create({ message: `Email to ${SECRET}`, type: 'EmailRejected' });
    logger.warn('Activity failed', {
      error: failure,
      durationMs: 12,
      activityType: 'email.send',
      workflowId: 'goal-1',
      problem: SECRET,
      nested: { title: SECRET },
    });
    logger.info('Could not write the episodic memory of the goal', { error: `because ${SECRET}` });
    logger.debug('plain');
    expect(entries.map((e) => [e.level, e.message])).toEqual([
      ['WARN', 'Activity failed'],
      ['INFO', 'Could not write the episodic memory of the goal'],
      ['DEBUG', 'plain'],
    ]);
    expect(entries[0].meta).toEqual({
      error: `ApplicationFailure (EmailRejected): ${WITHHELD}`,
      durationMs: 12,
      activityType: 'email.send',
      workflowId: 'goal-1',
      problem: WITHHELD,
      nested: WITHHELD,
    });
    expect(entries[1].meta).toEqual({ error: WITHHELD });
    expect(JSON.stringify(entries.map((e) => [e.message, e.meta]))).not.toContain('ada@example.com');
  });
});

describe('KEEL_CODEC_KEY', () => {
  it('is off when unset or empty', () => {
    expect(loadConfig({}).KEEL_CODEC_KEY).toBeUndefined();
    expect(loadConfig({ KEEL_CODEC_KEY: ' ' }).KEEL_CODEC_KEY).toBeUndefined();
  });

  it('takes id:base64 keys, standard or URL-safe base64, the first one encrypting', () => {
    const urlSafe = randomBytes(32).toString('base64url');
    const keys = loadConfig({ KEEL_CODEC_KEY: `${k2}, k1:${urlSafe}` }).KEEL_CODEC_KEY!;
    expect(keys.current.id).toBe('k2');
    expect([...keys.byId.keys()]).toEqual(['k2', 'k1']);
    expect(keys.byId.get('k1')!.key.equals(Buffer.from(urlSafe, 'base64url'))).toBe(true);
  });

  it.each([
    ['no id', keyText(), /KEEL_CODEC_KEY: entry 1 is not id:base64key/],
    [
      'a short key',
      `k1:${randomBytes(16).toString('base64')}`,
      /KEEL_CODEC_KEY: key "k1" is 16 bytes, AES-256 needs 32/,
    ],
    ['not base64', 'k1:not base64!', /KEEL_CODEC_KEY: key "k1" is not base64/],
    ['a bad id', `k 1:${keyText()}`, /KEEL_CODEC_KEY: entry 1: key id must be/],
    ['a repeated id', `${k1},${k1}`, /KEEL_CODEC_KEY: key id "k1" is listed twice/],
  ])('gives a start-up error naming the variable for %s, without quoting the key', (_what, value, message) => {
    let error: Error | undefined;
    try {
      loadConfig({ KEEL_CODEC_KEY: value });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(message);
    const material = value.split(',')[0].split(':').pop()!;
    if (material.length > 8) expect(error?.message).not.toContain(material);
  });

  it('checks KEEL_CODEC_UI_ORIGINS are origins', () => {
    expect(loadConfig({}).KEEL_CODEC_UI_ORIGINS).toEqual(['http://localhost:8233', 'http://127.0.0.1:8233']);
    expect(loadConfig({ KEEL_CODEC_UI_ORIGINS: 'https://temporal.example.com/' }).KEEL_CODEC_UI_ORIGINS).toEqual([
      'https://temporal.example.com',
    ]);
    expect(() => loadConfig({ KEEL_CODEC_UI_ORIGINS: 'https://temporal.example.com/ui' })).toThrow(
      /KEEL_CODEC_UI_ORIGINS: "https:\/\/temporal.example.com\/ui" is not an origin/,
    );
  });
});

describe('the remote codec protocol’s JSON', () => {
  it('reads and writes {payloads: [...]} with base64 metadata and data', () => {
    const p = toPayload({ title: SECRET });
    const json = payloadsToJson([p]);
    expect(json.payloads[0].metadata!.encoding).toBe(Buffer.from('json/plain').toString('base64'));
    const back = payloadsFromJson(JSON.parse(JSON.stringify(json)));
    expect(fromPayload(back[0])).toEqual({ title: SECRET });
    expect(() => payloadsFromJson({})).toThrow(/payloads/);
    expect(() => payloadsFromJson({ payloads: [{ data: 3 }] })).toThrow('payloads.0.data: expected base64 text');
  });
});

describe('the codec endpoint', () => {
  const apiKey = randomBytes(16).toString('hex');
  const UI = 'http://localhost:8233';
  const codec = new AesGcmPayloadCodec(parseCodecKeys(k1));
  let api: ServedApi;
  let off: ServedApi;

  beforeAll(async () => {
    // The codec routes use no other dependency: stand-ins that fail loudly if touched.
    const unused = new Proxy({}, { get: () => () => Promise.reject(new Error('not used by /codec')) }) as any;
    const deps = {
      client: unused,
      prisma: unused,
      memory: unused,
      apiKey,
      taskQueue: 'unused',
      goalSettings: {} as any,
      defaultBudgetUsd: 1,
      actor: 'operator:test',
    };
    api = await serveApp(createApp({ ...deps, codec: { codec, uiOrigins: [UI] } }));
    off = await serveApp(createApp(deps));
  });
  afterAll(async () => {
    await api?.close();
    await off?.close();
  });

  const post = (base: string, route: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const auth = { authorization: `Bearer ${apiKey}` };

  it('decodes and encodes over HTTP with the API key', async () => {
    const sealed = payloadsToJson(await codec.encode([toPayload({ title: SECRET })]));
    const res = await post(api.url, '/codec/decode', sealed, { ...auth, 'x-namespace': 'default' });
    expect(res.status).toBe(200);
    const decoded = payloadsFromJson(await res.json());
    expect(fromPayload(decoded[0])).toEqual({ title: SECRET });

    const enc = await post(api.url, '/codec/encode', payloadsToJson([toPayload('from the UI')]), auth);
    const encoded = payloadsFromJson(await enc.json());
    expect(meta(encoded[0], 'encoding')).toBe(ENCODING_ENCRYPTED);
    expect(fromPayload((await codec.decode(encoded))[0])).toBe('from the UI');
  });

  it('answers 401 without the key or with a wrong one, before reading the body', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }] as Record<string, string>[]) {
      const res = await post(api.url, '/codec/decode', { payloads: [] }, headers);
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe('unauthorized');
    }
    const res = await fetch(`${api.url}/codec/decode`, { method: 'POST', body: '{not json' });
    expect(res.status).toBe(401);
    expect((await fetch(`${api.url}/codec/ui-endpoint`)).status).toBe(401);
  });

  it('answers 400 for a body that is not {payloads}, 422 naming an unknown key id', async () => {
    expect((await post(api.url, '/codec/decode', { nope: 1 }, auth)).status).toBe(400);
    const foreign = payloadsToJson(
      await new AesGcmPayloadCodec(parseCodecKeys(`k7:${keyText()}`)).encode([toPayload(1)]),
    );
    const res = await post(api.url, '/codec/decode', foreign, auth);
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).error.message).toContain('key id "k7"');
  });

  it('gives a Web UI without credentials an endpoint whose path carries a token derived from the key', async () => {
    const res = await fetch(`${api.url}/codec/ui-endpoint`, { headers: auth });
    const { endpoint } = (await res.json()) as { endpoint: string };
    expect(endpoint).toBe(`${api.url}/codec/ui/${codecUiToken(apiKey)}`);
    expect(endpoint).not.toContain(apiKey);
    const sealed = payloadsToJson(await codec.encode([toPayload(SECRET)]));
    // What the dev server's UI sends: no Authorization, the namespace header, its own origin.
    const ok = await post(api.url, `${new URL(endpoint).pathname}/decode`, sealed, {
      origin: UI,
      'x-namespace': 'default',
    });
    expect(ok.status).toBe(200);
    expect(fromPayload(payloadsFromJson(await ok.json())[0])).toBe(SECRET);
    const wrong = await post(api.url, `/codec/ui/${'x'.repeat(32)}/decode`, sealed);
    expect(wrong.status).toBe(401);
  });

  it('sends CORS headers to the Web UI’s origin, preflight included, and to no other origin', async () => {
    const preflight = (origin: string) =>
      fetch(`${api.url}/codec/decode`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,x-namespace,authorization',
        },
      });
    const allowed = await preflight(UI);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(UI);
    expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(allowed.headers.get('vary')).toContain('Origin');

    const other = await preflight('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('access-control-allow-methods')).toBeNull();
    expect(other.headers.get('access-control-allow-credentials')).toBeNull();

    const sealed = payloadsToJson(await codec.encode([toPayload(1)]));
    const fromUi = await post(api.url, '/codec/decode', sealed, { ...auth, origin: UI });
    expect(fromUi.headers.get('access-control-allow-origin')).toBe(UI);
    // A 401 carries them too, so the UI can tell a bad key from a network error.
    const refused = await post(api.url, '/codec/decode', sealed, { origin: UI });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(UI);
    const fromOther = await post(api.url, '/codec/decode', sealed, { ...auth, origin: 'http://localhost:9999' });
    expect(fromOther.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers 404 naming KEEL_CODEC_KEY when encryption is off', async () => {
    const res = await post(off.url, '/codec/decode', { payloads: [] }, auth);
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.message).toContain('KEEL_CODEC_KEY');
    expect((await post(off.url, '/codec/decode', { payloads: [] })).status).toBe(401);
  });
});
