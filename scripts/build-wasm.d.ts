// Types for scripts/build-wasm.js, which stays plain JavaScript so it runs with node alone.

/** Compiles memory/wasm/dot.wat (SIMD enabled) with wabt; the same bytes for the same source. */
export function compileWat(): Promise<Uint8Array>;

/** The text of memory/wasm/dot-wasm.ts for the given wasm bytes, exactly as the script writes it. */
export function renderModule(bytes: Uint8Array): string;

/** Absolute path of the generated memory/wasm/dot-wasm.ts. */
export const OUT_FILE: string;

/** Absolute path of memory/wasm/dot.wat. */
export const WAT_FILE: string;
