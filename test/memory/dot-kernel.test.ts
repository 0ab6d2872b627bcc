/**
 * The committed WASM kernel (memory/wasm/dot-wasm.ts) is what
 * dot.wat compiles to, and it computes dot products: checked against a plain
 * JS float64 loop on random data of several shapes.
 */
import { readFileSync } from 'node:fs';
import { compileWat, OUT_FILE, renderModule } from '../../scripts/build-wasm';
import { createWasmMemory, instantiateDotKernel } from '../../memory/exact-index';
import { DOT_WASM_BASE64 } from '../../memory/wasm/dot-wasm';
import { prng } from './vector-store.contract';

describe('dot kernel', () => {
  it('the committed base64 is a fresh compile of dot.wat', async () => {
    const fresh = await compileWat();
    expect(Buffer.from(DOT_WASM_BASE64, 'base64').equals(Buffer.from(fresh))).toBe(true);
    // And the file is byte for byte what the build script writes (no hand edits).
    expect(readFileSync(OUT_FILE, 'utf8')).toBe(renderModule(fresh));
  });

  it.each([
    [1, 16],
    [7, 48],
    [1000, 384],
    [33, 1536],
  ])('scores %i rows of %i dims like a plain dot product', (rows, dims) => {
    const rand = prng(rows * 31 + dims);
    const queryOffset = 0;
    const matrixOffset = dims * 4;
    const outOffset = matrixOffset + rows * dims * 4;
    const memory = createWasmMemory(Math.ceil((outOffset + rows * 4) / 65_536));
    const scores = instantiateDotKernel(memory);
    const f32 = new Float32Array(memory.buffer);
    // Sentinels right after the output must survive: the kernel writes exactly `rows` scores.
    const after = outOffset / 4 + rows;
    if (after < f32.length) f32[after] = 12345;
    for (let i = 0; i < outOffset / 4; i++) f32[i] = rand() * 2 - 1;

    scores(matrixOffset, rows, dims, queryOffset, outOffset);

    for (let r = 0; r < rows; r++) {
      let expected = 0;
      for (let d = 0; d < dims; d++) expected += f32[matrixOffset / 4 + r * dims + d]! * f32[d]!;
      // float32 accumulation in a different order: agreement to a few ulps of the magnitudes summed.
      expect(Math.abs(f32[outOffset / 4 + r]! - expected)).toBeLessThan(1e-5 * Math.sqrt(dims));
    }
    if (after < f32.length) expect(f32[after]).toBe(12345);
  });

  it('scores nothing for zero rows', () => {
    const memory = createWasmMemory(1);
    const f32 = new Float32Array(memory.buffer);
    f32[100] = 7;
    instantiateDotKernel(memory)(64, 0, 16, 0, 400);
    expect(f32[100]).toBe(7);
  });
});
