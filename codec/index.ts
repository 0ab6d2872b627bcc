/**
 * Payload encryption for data sovereignty (KEEL_CODEC_KEY): the codec, the
 * data converter every Temporal client and worker in Keel uses when a key is
 * set, and the remote codec protocol the Temporal Web UI and CLI speak to the
 * API's codec endpoint. Without a key none of this is used and payloads stay
 * as the SDK's default converter writes them.
 */
import { createHmac } from 'node:crypto';
import type { DataConverter, Payload } from '@temporalio/common';
import { AesGcmPayloadCodec } from './codec';
import type { CodecKeys } from './keys';

export { AesGcmPayloadCodec, PayloadDecryptionError, ENCODING_ENCRYPTED, METADATA_KEY_ID } from './codec';
export { parseCodecKeys, type CodecKey, type CodecKeys } from './keys';

/**
 * The data converter for Temporal clients and workers: the AES-GCM codec, and
 * failures whose message and stack trace are encoded (so encrypted) too.
 * Undefined without keys, which leaves the SDK's defaults.
 */
export function codecDataConverter(keys: CodecKeys | undefined): DataConverter | undefined {
  if (!keys) return undefined;
  return {
    payloadCodecs: [new AesGcmPayloadCodec(keys)],
    failureConverterPath: require.resolve('./failure-converter'),
  };
}

/** A payload as the remote codec protocol writes it: protobuf JSON, bytes as base64. */
export interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/** Payloads from a `{payloads: [...]}` body; throws naming the first bad field. */
export function payloadsFromJson(body: unknown): Payload[] {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { payloads?: unknown }).payloads)) {
    throw new TypeError('payloads: expected {"payloads": [...]}');
  }
  return (body as { payloads: unknown[] }).payloads.map((p, i) => {
    if (typeof p !== 'object' || p === null) throw new TypeError(`payloads.${i}: expected an object`);
    const { metadata, data } = p as { metadata?: unknown; data?: unknown };
    if (data !== undefined && data !== null && typeof data !== 'string') {
      throw new TypeError(`payloads.${i}.data: expected base64 text`);
    }
    const meta: Record<string, Uint8Array> = {};
    if (metadata !== undefined && metadata !== null) {
      if (typeof metadata !== 'object' || Array.isArray(metadata)) {
        throw new TypeError(`payloads.${i}.metadata: expected an object`);
      }
      for (const [k, v] of Object.entries(metadata)) {
        if (typeof v !== 'string') throw new TypeError(`payloads.${i}.metadata.${k}: expected base64 text`);
        meta[k] = new Uint8Array(Buffer.from(v, 'base64'));
      }
    }
    return { metadata: meta, data: new Uint8Array(Buffer.from(data ?? '', 'base64')) };
  });
}

/** `{payloads: [...]}` as the remote codec protocol answers. */
export function payloadsToJson(payloads: Payload[]): { payloads: JsonPayload[] } {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(
        Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
      ),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    })),
  };
}

/**
 * The secret path segment of the codec endpoint for a Web UI that cannot send
 * the API key (the dev server's `--ui-codec-endpoint`, or a UI without login):
 * derived from the API key, so changing the key revokes it, and only handed out
 * to a caller holding the key (GET /codec/ui-endpoint).
 */
export function codecUiToken(apiKey: string): string {
  return createHmac('sha256', apiKey).update('keel codec ui endpoint v1').digest('base64url').slice(0, 32);
}

/** The start-up line saying whether payloads are encrypted, and with which key ids (never the keys). */
export function codecStatus(keys: CodecKeys | undefined, who: string): string {
  if (!keys) return `[${who}] payload encryption off (KEEL_CODEC_KEY not set)`;
  const others = [...keys.byId.keys()].filter((id) => id !== keys.current.id);
  return (
    `[${who}] payload encryption on: AES-256-GCM with key "${keys.current.id}"` +
    (others.length ? `, also decrypting ${others.map((id) => `"${id}"`).join(', ')}` : '')
  );
}

export { withholdingLogger, WITHHELD } from './logging';
