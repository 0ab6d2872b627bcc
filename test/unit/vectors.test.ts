/** The one stored vector format (memory/vectors.ts): float32, little-endian, whatever the host. */
import { decodeFloat32LE, encodeFloat32LE } from '../../memory/vectors';

describe('float32 little-endian', () => {
  it('writes the IEEE 754 bits least significant byte first', () => {
    // 1.0f is 0x3F800000 and -2.5f is 0xC0200000: stored as 00 00 80 3F, 00 00 20 C0.
    expect([...encodeFloat32LE(Float32Array.of(1, -2.5))]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0]);
    expect([...decodeFloat32LE(Uint8Array.of(0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0), 2)!]).toEqual([1, -2.5]);
  });

  it('round-trips every value bit for bit, from any offset of a shared buffer', () => {
    const v = Float32Array.of(0, -0, 0.1, -3.4e38, 1.4e-45, Infinity, -Infinity, NaN, 384.75);
    const bytes = encodeFloat32LE(v);
    expect(bytes.byteLength).toBe(v.length * 4);
    // A driver's Buffer is often a slice of a larger pool, at an unaligned offset.
    const pool = Buffer.alloc(bytes.byteLength + 3);
    pool.set(bytes, 1);
    const back = decodeFloat32LE(pool.subarray(1, 1 + bytes.byteLength), v.length)!;
    expect(Buffer.from(back.buffer)).toEqual(Buffer.from(v.buffer));
    // A copy, not a view: the pool being reused does not change the vector.
    pool.fill(0);
    expect(back[8]).toBe(384.75);
  });

  it('encodes a view into a larger array by its own bytes only', () => {
    const big = Float32Array.of(9, 1, 2, 9);
    expect(decodeFloat32LE(encodeFloat32LE(big.subarray(1, 3)))).toEqual(Float32Array.of(1, 2));
  });

  it('refuses bytes of another length', () => {
    expect(decodeFloat32LE(new Uint8Array(12), 4)).toBeUndefined();
    expect(decodeFloat32LE(new Uint8Array(6))).toBeUndefined();
    expect(decodeFloat32LE(new Uint8Array(0))).toEqual(new Float32Array(0));
  });
});
