/**
 * The one byte format of stored vectors: float32, little-endian, 4 bytes per
 * dimension (memory_items.embedding and embedding_cache.vector). Little-endian
 * whatever the host's byte order, so a database written on one machine reads
 * the same on any other.
 */

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `v` as float32 little-endian bytes (a new buffer, typed as Prisma's `Bytes`). */
export function encodeFloat32LE(v: Float32Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(v.length * 4);
  if (HOST_IS_LITTLE_ENDIAN) {
    // The host's layout is the stored one: one copy of the bytes.
    out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  } else {
    const view = new DataView(out.buffer);
    for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i], true);
  }
  return out;
}

/**
 * Float32 little-endian bytes as a new Float32Array (never a view of `bytes`,
 * which a driver may pool and reuse). Undefined when the length is not
 * `dims * 4` bytes (or, without `dims`, not a multiple of 4): a vector of
 * another size or a corrupt value, which the caller decides about.
 */
export function decodeFloat32LE(bytes: Uint8Array, dims?: number): Float32Array | undefined {
  const n = dims ?? bytes.byteLength / 4;
  if (!Number.isInteger(n) || bytes.byteLength !== n * 4) return undefined;
  if (HOST_IS_LITTLE_ENDIAN) {
    // Copy into a fresh buffer, which also aligns it as a Float32Array needs.
    // (Not `bytes.slice()`: on a Node Buffer that is a view of the same memory.)
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new Float32Array(copy.buffer);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
