// Types for scripts/temporal-cli.js, which stays plain JavaScript because setup.js loads it before node_modules exist.

/** Where a Temporal CLI came from; 'sdk-download' means none is here and the Temporal SDK must download one. */
export type TemporalCliSource = 'TEMPORAL_CLI' | 'PATH' | 'GOPATH' | 'go install' | 'sdk-download';

export interface TemporalCliResolution {
  /** Absolute path of a working `temporal` binary, or null when the SDK must download it. */
  path: string | null;
  source: TemporalCliSource;
}

/**
 * Resolves the Temporal CLI: env TEMPORAL_CLI, `temporal` on PATH, Go's bin folder, then (with `install`)
 * `go install` of the pinned version. Throws when TEMPORAL_CLI is not a working CLI or the build fails.
 */
export function resolveTemporalCli(options?: {
  install?: boolean;
  log?: (line: string) => void;
}): Promise<TemporalCliResolution>;

/** The path scripts/setup.js recorded in .keel/temporal-path, or null (none recorded, or it is gone). */
export function readTemporalPathFile(): string | null;

/** The pinned module `go install` builds. */
export const TEMPORAL_CLI_MODULE: string;

/** Absolute path of .keel/temporal-path. */
export const TEMPORAL_PATH_FILE: string;
