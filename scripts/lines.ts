// Line splitting for child-process output, so the orchestrator can prefix and filter whole lines.

/** Calls `onLine` for every complete line `stream` emits, and for a last unterminated one when it ends. */
export function forEachLine(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split(/\r?\n/);
    buffered = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  stream.on('end', () => {
    if (buffered) onLine(buffered);
  });
}
