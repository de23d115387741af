/**
 * The CloudWatch EMF lines (functions/metrics.ts) a piece of code prints to stdout, parsed; the
 * lines still reach stdout.
 */
import { vi } from 'vitest';

/** EMF documents (lines with `_aws`) printed on stdout while `run` runs. */
export async function emfLines(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest) => {
    lines.push(String(chunk));
    return write(chunk as string, ...(rest as []));
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
