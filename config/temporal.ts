/**
 * Where Temporal is and how to reach it, read the way Temporal's own CLI and SDKs read it
 * (`@temporalio/envconfig`): a TOML profile file (`TEMPORAL_CONFIG_FILE`, else
 * `~/.config/temporalio/temporal.toml`; profile `TEMPORAL_PROFILE`, else `default`) under the
 * `TEMPORAL_*` environment variables, which win field by field. The same build then runs against
 * the dev server, a self-hosted cluster with mTLS or Temporal Cloud with an API key. The worker's
 * NativeConnection, every client Connection (worker, API, `npm start`) take their options from
 * {@link resolveTemporalConfig}; nothing else reads these variables.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  loadClientConfig,
  loadClientConfigProfile,
  toClientOptions,
  type ClientConfigProfile,
} from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';

/** The dev server's address, and the SDK's default, when nothing names another. */
export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

/**
 * The variables `@temporalio/envconfig` reads that Keel honours, as Temporal's environment-configuration
 * reference names them; plus `TEMPORAL_GRPC_META_<NAME>` ({@link TEMPORAL_GRPC_META_PREFIX}). Its
 * `TEMPORAL_CODEC_*` are not among them: the TypeScript SDK has no remote codec client, and Keel encrypts
 * payloads itself (KEEL_CODEC_KEY).
 */
export const TEMPORAL_ENV_VARIABLES = [
  'TEMPORAL_CONFIG_FILE',
  'TEMPORAL_PROFILE',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
] as const;

/** `TEMPORAL_GRPC_META_X_TENANT=acme` sends the gRPC header `x-tenant: acme` with every call. */
export const TEMPORAL_GRPC_META_PREFIX = 'TEMPORAL_GRPC_META_';

/** Options both `NativeConnection.connect` (worker) and `Connection.connect`/`lazy` (clients) take as they are. */
export interface TemporalConnectionOptions {
  address: string;
  /** true: TLS with the system's roots; an object: a server CA, a client certificate pair (mTLS), an SNI name. */
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

/** The resolved Temporal settings of a process. */
export interface TemporalSettings {
  address: string;
  namespace: string;
  connectionOptions: TemporalConnectionOptions;
  /**
   * True when the environment or a profile names an address. `npm start` then uses that server; otherwise it
   * starts a dev server at {@link DEFAULT_TEMPORAL_ADDRESS}.
   */
  addressConfigured: boolean;
  /** The profile file read, if any. */
  configFile?: string;
  /** The profile taken from it (`default` unless TEMPORAL_PROFILE names another). */
  profile?: string;
  /** One line for logs: address, namespace, where they came from, the kind of security. Never a secret. */
  description: string;
}

/** A Temporal setting that cannot be used; the message names the variable, the file or the profile. */
export class TemporalConfigError extends Error {
  override name = 'TemporalConfigError';
}

/**
 * Resolves Temporal's connection settings from `env` (default: the process environment): the profile file,
 * then each `TEMPORAL_*` variable over it. An empty variable counts as unset (compose and `.env` files write
 * empty ones), except `TEMPORAL_GRPC_META_<NAME>=`, which removes that header as envconfig defines. A TLS
 * file named by a path is read here, so a missing certificate stops the process at start-up.
 *
 * @throws TemporalConfigError when TEMPORAL_CONFIG_FILE names no readable file, TEMPORAL_PROFILE names a
 *   profile the file lacks, the file is not valid TOML, a TLS file cannot be read, or a setting is one the
 *   TypeScript SDK cannot honour
 */
export function resolveTemporalConfig(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const vars: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (value === '' && !key.startsWith(TEMPORAL_GRPC_META_PREFIX)) continue;
    vars[key] = value;
  }

  const explicitFile = vars.TEMPORAL_CONFIG_FILE;
  if (explicitFile !== undefined) {
    // envconfig treats a missing file as an empty one: a typo would silently mean "the local dev server".
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(explicitFile);
    } catch (err) {
      throw new TemporalConfigError(
        `TEMPORAL_CONFIG_FILE names ${explicitFile}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`,
      );
    }
    if (!stat.isFile())
      throw new TemporalConfigError(`TEMPORAL_CONFIG_FILE names ${explicitFile}, which is not a file`);
  }
  const configFile = explicitFile ?? existingDefaultFile(vars);
  const profileName = vars.TEMPORAL_PROFILE;
  const fileText = configFile ? ` in ${configFile}` : '';

  if (envFlag(vars.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION)) {
    throw new TemporalConfigError(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by the Temporal TypeScript SDK; ' +
        "set TEMPORAL_TLS_SERVER_NAME to the name in the server's certificate instead",
    );
  }

  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({
      overrideEnvVars: vars,
      ...(configFile ? { configSource: { path: configFile } } : {}),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/^Profile '.*' not found/.test(message)) {
      const names = configFile ? profileNames(configFile) : [];
      throw new TemporalConfigError(
        `TEMPORAL_PROFILE names profile "${profileName}", which is not defined` +
          (configFile
            ? `${fileText} (it defines ${names.length ? names.map((n) => `"${n}"`).join(', ') : 'no profile'})`
            : ': no profile file was found (set TEMPORAL_CONFIG_FILE to one)'),
      );
    }
    throw new TemporalConfigError(`Temporal profile file${fileText || ' (none)'} could not be read: ${message}`);
  }

  let connect: ReturnType<typeof toClientOptions>;
  try {
    // Reads the TLS files named by *_PATH settings.
    connect = toClientOptions(profile);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const file = e.path ? ` ${e.path}` : '';
    throw new TemporalConfigError(
      `Temporal TLS file${file} (profile "${profileName ?? 'default'}"${fileText} or TEMPORAL_TLS_*) cannot be read: ${e.code ?? e.message}`,
    );
  }
  const { address: givenAddress, tls, apiKey } = connect.connectionOptions;
  const metadata = profile.grpcMeta;
  if (apiKey !== undefined && metadata && Object.keys(metadata).some((k) => k.toLowerCase() === 'authorization')) {
    throw new TemporalConfigError(
      'Temporal API key (TEMPORAL_API_KEY or api_key) and an "authorization" gRPC header (grpc_meta or TEMPORAL_GRPC_META_AUTHORIZATION) cannot both be set',
    );
  }
  const address = givenAddress ?? DEFAULT_TEMPORAL_ADDRESS;
  const namespace = connect.namespace ?? DEFAULT_TEMPORAL_NAMESPACE;
  const connectionOptions: TemporalConnectionOptions = {
    address,
    ...(tls !== undefined && tls !== null ? { tls } : {}),
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(metadata && Object.keys(metadata).length ? { metadata } : {}),
  };
  const usedProfile = configFile ? (profileName ?? 'default') : undefined;
  return {
    address,
    namespace,
    connectionOptions,
    addressConfigured: givenAddress !== undefined,
    ...(configFile ? { configFile, profile: usedProfile } : {}),
    description: describe(address, namespace, connectionOptions, configFile, usedProfile),
  };
}

function describe(
  address: string,
  namespace: string,
  options: TemporalConnectionOptions,
  configFile: string | undefined,
  profile: string | undefined,
): string {
  const tls = options.tls;
  const security =
    tls === undefined || tls === false
      ? 'no TLS'
      : typeof tls === 'object' && tls.clientCertPair
        ? 'mTLS with a client certificate'
        : 'TLS';
  const parts = [`${address}, namespace ${namespace}`, security];
  if (options.apiKey !== undefined) parts.push('API key');
  if (configFile) parts.push(`profile "${profile}" of ${configFile}`);
  return parts.join(', ');
}

/** envconfig's own reading of a boolean variable. */
function envFlag(value: string | undefined): boolean {
  return value === '1' || value === 'true';
}

/** The profile file envconfig falls back to (`$XDG_CONFIG_HOME` or `~/.config`, `temporalio/temporal.toml`), if it exists. */
function existingDefaultFile(vars: Record<string, string>): string | undefined {
  let dir: string | undefined;
  if (os.platform() === 'win32') dir = vars.APPDATA;
  else if (os.platform() === 'darwin') dir = vars.HOME && path.join(vars.HOME, 'Library', 'Application Support');
  else if (vars.XDG_CONFIG_HOME) dir = path.isAbsolute(vars.XDG_CONFIG_HOME) ? vars.XDG_CONFIG_HOME : undefined;
  else dir = vars.HOME && path.join(vars.HOME, '.config');
  if (!dir) return undefined;
  const file = path.join(dir, 'temporalio', 'temporal.toml');
  return fs.existsSync(file) ? file : undefined;
}

/** The profiles a file defines, for an error message; none when it cannot be parsed. */
function profileNames(file: string): string[] {
  try {
    return Object.keys(loadClientConfig({ configSource: { path: file } }).profiles);
  } catch {
    return [];
  }
}
