/**
 * The payload codec's keys, from KEEL_CODEC_KEY: a comma-separated list of
 * `id:base64key`, each key 32 bytes (AES-256). The first key encrypts; every
 * key listed decrypts, so a key can be rotated by putting a new one first and
 * keeping the old one after it until no history needs it.
 */

/** One AES-256 key and the id written beside every payload it encrypts. */
export interface CodecKey {
  id: string;
  key: Buffer;
}

/** The parsed keys: `current` encrypts, `byId` decrypts. */
export interface CodecKeys {
  current: CodecKey;
  byId: ReadonlyMap<string, CodecKey>;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
export const KEY_BYTES = 32;

/**
 * Parses KEEL_CODEC_KEY. Throws an Error whose message says what is wrong with
 * which entry, never the key material itself.
 */
export function parseCodecKeys(text: string): CodecKeys {
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (entries.length === 0) throw new Error('no key given (expected id:base64key[,id:base64key...])');
  const keys: CodecKey[] = [];
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) throw new Error(`${where} is not id:base64key (no ":")`);
    const id = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (!KEY_ID.test(id)) throw new Error(`${where}: key id must be 1-64 of A-Z a-z 0-9 . _ -`);
    if (!BASE64.test(encoded)) throw new Error(`key "${id}" is not base64`);
    const key = Buffer.from(encoded, encoded.includes('-') || encoded.includes('_') ? 'base64url' : 'base64');
    if (key.length !== KEY_BYTES) {
      throw new Error(
        `key "${id}" is ${key.length} bytes, AES-256 needs ${KEY_BYTES} (make one with: openssl rand -base64 32)`,
      );
    }
    if (keys.some((k) => k.id === id)) throw new Error(`key id "${id}" is listed twice`);
    keys.push({ id, key });
  });
  return { current: keys[0], byId: new Map(keys.map((k) => [k.id, k])) };
}
