/**
 * config/temporal.ts: Temporal's connection options from a TOML profile file and the TEMPORAL_* variables
 * (@temporalio/envconfig), for the dev server, a self-hosted cluster with mTLS, Temporal Cloud with an API key.
 * mTLS and Cloud cannot be reached here: these tests check the options handed to the SDK, not a connection
 * (test/integration/temporal-profile.test.ts connects through a profile to the dev server).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config';
import { resolveTemporalConfig, TemporalConfigError } from '../../config/temporal';

let dir: string;
let file: string;
const pem = (what: string) =>
  `-----BEGIN ${what}-----\n${Buffer.from(what).toString('base64')}\n-----END ${what}-----\n`;
const bytes = (text: string) => new Uint8Array(Buffer.from(text));

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'keel-temporal-config-'));
  writeFileSync(path.join(dir, 'client.pem'), pem('CERTIFICATE'));
  writeFileSync(path.join(dir, 'client.key'), pem('PRIVATE KEY'));
  writeFileSync(path.join(dir, 'ca.pem'), pem('CA CERTIFICATE'));
  writeFileSync(path.join(dir, 'other.pem'), pem('OTHER CERTIFICATE'));
  file = path.join(dir, 'temporal.toml');
  writeFileSync(
    file,
    `
[profile.default]
address = "localhost:7233"
namespace = "dev"

[profile.selfhosted]
address = "temporal.internal.example:7233"
namespace = "keel"
[profile.selfhosted.tls]
client_cert_path = "${path.join(dir, 'client.pem')}"
client_key_path = "${path.join(dir, 'client.key')}"
server_ca_cert_path = "${path.join(dir, 'ca.pem')}"
server_name = "temporal.internal.example"

[profile.cloud]
address = "keel.a1b2c.tmprl.cloud:7233"
namespace = "keel.a1b2c"
api_key = "cloud-key-from-file"
[profile.cloud.grpc_meta]
x-tenant = "acme"

[profile.missing-cert]
address = "temporal.internal.example:7233"
[profile.missing-cert.tls]
client_cert_path = "${path.join(dir, 'nope.pem')}"
client_key_path = "${path.join(dir, 'client.key')}"
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveTemporalConfig', () => {
  it('without anything configured: the dev server address, namespace default, no TLS, no address named', () => {
    const t = resolveTemporalConfig({});
    expect(t).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', addressConfigured: false });
    expect(t.connectionOptions).toEqual({ address: '127.0.0.1:7233' });
    expect(t.configFile).toBeUndefined();
  });

  it('keeps TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE working alone, as before profiles', () => {
    const t = resolveTemporalConfig({ TEMPORAL_ADDRESS: '10.0.0.5:7233', TEMPORAL_NAMESPACE: 'prod' });
    expect(t).toMatchObject({ address: '10.0.0.5:7233', namespace: 'prod', addressConfigured: true });
    expect(t.connectionOptions).toEqual({ address: '10.0.0.5:7233' });
  });

  it('takes the default profile, or the one TEMPORAL_PROFILE names', () => {
    expect(resolveTemporalConfig({ TEMPORAL_CONFIG_FILE: file })).toMatchObject({
      address: 'localhost:7233',
      namespace: 'dev',
      addressConfigured: true,
      configFile: file,
      profile: 'default',
    });
    expect(resolveTemporalConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' })).toMatchObject({
      address: 'keel.a1b2c.tmprl.cloud:7233',
      namespace: 'keel.a1b2c',
      profile: 'cloud',
    });
  });

  it('lets each TEMPORAL_* variable override its field of the profile, and only that field', () => {
    const t = resolveTemporalConfig({
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_PROFILE: 'selfhosted',
      TEMPORAL_NAMESPACE: 'staging',
      TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'other.pem'),
    });
    expect(t.address).toBe('temporal.internal.example:7233');
    expect(t.namespace).toBe('staging');
    expect(t.connectionOptions.tls).toEqual({
      serverNameOverride: 'temporal.internal.example',
      serverRootCACertificate: bytes(pem('CA CERTIFICATE')),
      clientCertPair: { crt: bytes(pem('OTHER CERTIFICATE')), key: bytes(pem('PRIVATE KEY')) },
    });
    expect(
      resolveTemporalConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_ADDRESS: 'x:1' }),
    ).toMatchObject({ address: 'x:1', namespace: 'keel.a1b2c' });
  });

  it('reads the TLS files a self-hosted profile names: client certificate pair (mTLS), server CA, server name', () => {
    const t = resolveTemporalConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'selfhosted' });
    expect(t.connectionOptions).toEqual({
      address: 'temporal.internal.example:7233',
      tls: {
        serverNameOverride: 'temporal.internal.example',
        serverRootCACertificate: bytes(pem('CA CERTIFICATE')),
        clientCertPair: { crt: bytes(pem('CERTIFICATE')), key: bytes(pem('PRIVATE KEY')) },
      },
    });
    expect(t.description).toBe(
      `temporal.internal.example:7233, namespace keel, mTLS with a client certificate, profile "selfhosted" of ${file}`,
    );
  });

  it('reads mTLS from TEMPORAL_TLS_* variables alone, paths or inline data', () => {
    const t = resolveTemporalConfig({
      TEMPORAL_ADDRESS: 'temporal.internal.example:7233',
      TEMPORAL_TLS_CLIENT_CERT_DATA: pem('CERTIFICATE'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'ca.pem'),
    });
    expect(t.connectionOptions.tls).toEqual({
      serverRootCACertificate: bytes(pem('CA CERTIFICATE')),
      clientCertPair: { crt: bytes(pem('CERTIFICATE')), key: bytes(pem('PRIVATE KEY')) },
    });
  });

  it('turns TLS on with an API key (Temporal Cloud), unless TEMPORAL_TLS says false', () => {
    const cloud = resolveTemporalConfig({
      TEMPORAL_ADDRESS: 'keel.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'keel.a1b2c',
      TEMPORAL_API_KEY: 'secret-key',
    });
    expect(cloud.connectionOptions).toEqual({
      address: 'keel.a1b2c.tmprl.cloud:7233',
      tls: true,
      apiKey: 'secret-key',
    });
    expect(cloud.description).toBe('keel.a1b2c.tmprl.cloud:7233, namespace keel.a1b2c, TLS, API key');
    expect(cloud.description).not.toContain('secret-key');
    const plain = resolveTemporalConfig({
      TEMPORAL_ADDRESS: 'proxy:7233',
      TEMPORAL_API_KEY: 'k',
      TEMPORAL_TLS: 'false',
    });
    expect(plain.connectionOptions).toEqual({ address: 'proxy:7233', tls: false, apiKey: 'k' });
    expect(resolveTemporalConfig({ TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS: 'true' }).connectionOptions.tls).toEqual({});
  });

  it("overrides a profile's API key from the environment and sends its gRPC headers, with TEMPORAL_GRPC_META_*", () => {
    const t = resolveTemporalConfig({
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_PROFILE: 'cloud',
      TEMPORAL_API_KEY: 'key-from-env',
      TEMPORAL_GRPC_META_X_REGION: 'eu',
    });
    expect(t.connectionOptions).toEqual({
      address: 'keel.a1b2c.tmprl.cloud:7233',
      tls: true,
      apiKey: 'key-from-env',
      metadata: { 'x-tenant': 'acme', 'x-region': 'eu' },
    });
    // An empty TEMPORAL_GRPC_META_<NAME> removes the header, as envconfig defines.
    expect(
      resolveTemporalConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_GRPC_META_X_TENANT: '' })
        .connectionOptions.metadata,
    ).toBeUndefined();
  });

  it('counts an empty variable as unset (compose and .env files write empty ones)', () => {
    const t = resolveTemporalConfig({ TEMPORAL_ADDRESS: '', TEMPORAL_API_KEY: '', TEMPORAL_CONFIG_FILE: '' });
    expect(t.connectionOptions).toEqual({ address: '127.0.0.1:7233' });
    expect(t.addressConfigured).toBe(false);
  });

  it('reads the default profile file under $XDG_CONFIG_HOME (or ~/.config)/temporalio, as the Temporal CLI writes it', () => {
    const home = path.join(dir, 'xdg');
    mkdirSync(path.join(home, 'temporalio'), { recursive: true });
    writeFileSync(path.join(home, 'temporalio', 'temporal.toml'), '[profile.default]\naddress = "from-xdg:7233"\n');
    expect(resolveTemporalConfig({ XDG_CONFIG_HOME: home })).toMatchObject({
      address: 'from-xdg:7233',
      configFile: path.join(home, 'temporalio', 'temporal.toml'),
    });
  });

  describe('fails at start-up, naming what is wrong', () => {
    const failure = (env: NodeJS.ProcessEnv) => {
      try {
        resolveTemporalConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(TemporalConfigError);
        return (err as Error).message;
      }
      throw new Error('expected a TemporalConfigError');
    };

    it('a TEMPORAL_CONFIG_FILE that does not exist (envconfig alone would ignore it)', () => {
      expect(failure({ TEMPORAL_CONFIG_FILE: path.join(dir, 'nope.toml') })).toBe(
        `TEMPORAL_CONFIG_FILE names ${path.join(dir, 'nope.toml')}, which cannot be read (ENOENT)`,
      );
      expect(failure({ TEMPORAL_CONFIG_FILE: dir })).toBe(`TEMPORAL_CONFIG_FILE names ${dir}, which is not a file`);
    });

    it('a profile the file does not define, listing those it does', () => {
      expect(failure({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' })).toBe(
        `TEMPORAL_PROFILE names profile "prod", which is not defined in ${file} ` +
          '(it defines "default", "selfhosted", "cloud", "missing-cert")',
      );
      expect(failure({ TEMPORAL_PROFILE: 'prod' })).toBe(
        'TEMPORAL_PROFILE names profile "prod", which is not defined: no profile file was found (set TEMPORAL_CONFIG_FILE to one)',
      );
    });

    it('a file that is not TOML', () => {
      const bad = path.join(dir, 'bad.toml');
      writeFileSync(bad, '[profile.default\naddress = ');
      expect(failure({ TEMPORAL_CONFIG_FILE: bad })).toMatch(
        new RegExp(`^Temporal profile file in ${bad.replace(/[.]/g, '\\.')} could not be read: `),
      );
    });

    it('a TLS file that cannot be read, with its path', () => {
      expect(failure({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'missing-cert' })).toBe(
        `Temporal TLS file ${path.join(dir, 'nope.pem')} (profile "missing-cert" in ${file} or TEMPORAL_TLS_*) cannot be read: ENOENT`,
      );
    });

    it('settings the TypeScript SDK cannot honour, or that contradict each other', () => {
      expect(failure({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).toMatch(
        /^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported .* TEMPORAL_TLS_SERVER_NAME/,
      );
      expect(failure({ TEMPORAL_API_KEY: 'k', TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer other' })).toMatch(
        /API key .* "authorization" gRPC header .* cannot both be set/,
      );
    });

    it('through loadConfig, beside the other settings', () => {
      expect(() => loadConfig({ PORT: 'http', TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' })).toThrow(
        /^Invalid configuration: PORT: .*; TEMPORAL_PROFILE names profile "prod"/,
      );
    });
  });
});
