/**
 * Keel's payload codec: AES-256-GCM over each whole Temporal payload (its
 * metadata and data), so Temporal's history and database hold ciphertext.
 *
 * An encrypted payload carries `encoding: binary/encrypted` and the id of the
 * key that sealed it in its metadata; its data is IV (12 random bytes, fresh
 * per payload) ‖ ciphertext ‖ GCM tag (16 bytes). The key id is also the
 * additional authenticated data, so a payload cannot be passed off under
 * another id. Payloads without the marker are passed through on decode:
 * histories recorded before encryption was turned on keep replaying.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { CodecKeys } from './keys';

export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_KEY_ID = 'encryption-key-id';
export const METADATA_CIPHER = 'encryption-cipher';
/** Names the cipher and the plaintext framing below, so either can change later without guessing. */
export const CIPHER = 'AES-256-GCM/keel-v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/** A payload that could not be decrypted; the message names the key id and never the data. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeys) {}

  /** The id of the key that encrypts. */
  get currentKeyId(): string {
    return this.keys.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.decrypt(p));
  }

  private encrypt(payload: Payload): Payload {
    const { id, key } = this.keys.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(id, 'utf8'));
    const sealed = Buffer.concat([cipher.update(frame(payload)), cipher.final()]);
    return {
      metadata: {
        encoding: utf8(ENCODING_ENCRYPTED),
        [METADATA_KEY_ID]: utf8(id),
        [METADATA_CIPHER]: utf8(CIPHER),
      },
      data: Buffer.concat([iv, sealed, cipher.getAuthTag()]),
    };
  }

  private decrypt(payload: Payload): Payload {
    if (text(payload.metadata?.encoding) !== ENCODING_ENCRYPTED) return payload;
    const id = text(payload.metadata?.[METADATA_KEY_ID]);
    if (!id) throw new PayloadDecryptionError(`encrypted payload has no ${METADATA_KEY_ID} in its metadata`);
    const cipherName = text(payload.metadata?.[METADATA_CIPHER]) ?? CIPHER;
    if (cipherName !== CIPHER) {
      throw new PayloadDecryptionError(`payload encrypted with key id "${id}" uses an unknown cipher "${cipherName}"`);
    }
    const known = this.keys.byId.get(id);
    if (!known) {
      throw new PayloadDecryptionError(
        `payload encrypted with key id "${id}", which is not in KEEL_CODEC_KEY (it has ${[...this.keys.byId.keys()].join(', ')})`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new PayloadDecryptionError(`payload encrypted with key id "${id}" is truncated`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', known.key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(id, 'utf8'));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return unframe(plain);
    } catch (err) {
      if (err instanceof PayloadDecryptionError) throw err;
      throw new PayloadDecryptionError(
        `payload encrypted with key id "${id}" failed authentication (altered, or a different key under that id)`,
      );
    }
  }
}

/*
 * The plaintext framing (not a protobuf; only this codec reads it):
 * u32 count of metadata entries, then per entry u16 name length, name (UTF-8),
 * u32 value length, value; then the data to the end.
 */
function frame(payload: Payload): Buffer {
  const parts: Buffer[] = [];
  const entries = Object.entries(payload.metadata ?? {});
  parts.push(u32(entries.length));
  for (const [name, value] of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const valueBytes = Buffer.from(value ?? new Uint8Array());
    parts.push(u16(nameBytes.length), nameBytes, u32(valueBytes.length), valueBytes);
  }
  parts.push(Buffer.from(payload.data ?? new Uint8Array()));
  return Buffer.concat(parts);
}

function unframe(plain: Buffer): Payload {
  let at = 0;
  const need = (n: number) => {
    if (at + n > plain.length) throw new PayloadDecryptionError('decrypted payload is malformed');
  };
  need(4);
  const count = plain.readUInt32BE(at);
  at += 4;
  const metadata: Record<string, Uint8Array> = {};
  for (let i = 0; i < count; i++) {
    need(2);
    const nameLength = plain.readUInt16BE(at);
    at += 2;
    need(nameLength);
    const name = plain.toString('utf8', at, at + nameLength);
    at += nameLength;
    need(4);
    const valueLength = plain.readUInt32BE(at);
    at += 4;
    need(valueLength);
    metadata[name] = new Uint8Array(plain.subarray(at, at + valueLength));
    at += valueLength;
  }
  return { metadata, data: new Uint8Array(plain.subarray(at)) };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
