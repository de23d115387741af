/**
 * `npm run bench -- <name> [--size-mib N] [--runs N]`: runs one benchmark. Progress goes to
 * stderr; the LAST stdout line is the benchmark's JSON summary. Exit 0 when it ran (whatever the
 * figures), 1 when it failed, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { runFull } from './full.ts';
import { runIncremental } from './incremental.ts';

const USAGE = `usage: npm run bench -- full|incremental [--size-mib N] [--runs N] [--poll-ms N]
  full         4 GiB disk of incompressible data on a running VM: Lifeboat vs raw restic and rsync
  incremental  the same disk in qcow2 with MODE=INCREMENT: a FULL, 1% of its 64 KiB blocks
               rewritten at random, then the increment
  --size-mib   disk size in MiB (default 4096)
  --runs       runs of each raw tool, median reported (default 3)
  --poll-ms    interval of the API polls that time a Lifeboat backup (default 100)`;

/** The benchmarks by name. */
const BENCHMARKS: Record<
  string,
  (o: { sizeMiB: number; runs: number; pollMs: number; log: (l: string) => void }) => Promise<unknown>
> = {
  full: runFull,
  incremental: runIncremental,
};

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const bench = BENCHMARKS[parsed.name];
  if (!bench) {
    process.stderr.write(`bench: unknown benchmark "${parsed.name}"\n${USAGE}\n`);
    return 2;
  }
  try {
    const summary = await bench({ sizeMiB: parsed.sizeMiB, runs: parsed.runs, pollMs: parsed.pollMs, log });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`bench: ${parsed.name} failed: ${(error as Error).stack ?? error}\n`);
    return 1;
  }
}

function parse(argv: string[]): { name: string; sizeMiB: number; runs: number; pollMs: number } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'size-mib': { type: 'string' }, runs: { type: 'string' }, 'poll-ms': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new Error('name one benchmark');
  const sizeMiB = Number(values['size-mib'] ?? 4096);
  const runs = Number(values.runs ?? 3);
  const pollMs = Number(values['poll-ms'] ?? 100);
  if (!Number.isInteger(pollMs) || pollMs < 10) throw new Error('--poll-ms must be an integer >= 10');
  if (!Number.isInteger(sizeMiB) || sizeMiB < 16) throw new Error('--size-mib must be an integer >= 16');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  return { name: positionals[0] as string, sizeMiB, runs, pollMs };
}

process.exitCode = await main(process.argv.slice(2));
