/**
 * `npm run bench -- <name> [--size-mib N] [--repeat N]`: runs one benchmark. Progress goes to
 * stderr; the LAST stdout line is the benchmark's JSON summary. Exit 0 when it ran (whatever the
 * figures), 1 when it failed, 2 on bad usage. A Lifeboat backup or restore is followed as
 * `lifeboat ... --wait` follows it and timed from what the stack records (bench/lifeboat.ts), so
 * no poll interval is a benchmark option.
 */
import { parseArgs } from 'node:util';
import { runCeph } from './ceph.ts';
import { runFull } from './full.ts';
import { runIdle } from './idle.ts';
import { runIncremental } from './incremental.ts';
import { runRestoreBench } from './restore.ts';
import { runStorm } from './storm.ts';

const USAGE = `usage: npm run bench -- full|incremental|restore|ceph|idle [--size-mib N] [--repeat N]
  full         4 GiB disk of incompressible data on a running VM: Lifeboat vs raw restic and rsync,
               the hand pipeline (backup-begin, nbdcopy | restic) and virtnbdbackup, interleaved
  restore      that disk backed up to restic, then restored to a folder by Lifeboat vs raw
               restic dump + qemu-img convert, interleaved
  incremental  the same disk in qcow2 with MODE=INCREMENT: a FULL, 1% of its 64 KiB blocks
               rewritten at random, then the increment
  ceph         4 GiB Ceph rbd disk of incompressible data on a running VM: Lifeboat's FULL vs raw
               rbd export - | restic backup --stdin, interleaved; 1% of its blocks rewritten, then
               Lifeboat's increment
  --size-mib   disk size in MiB (default 4096)
  --repeat     rounds of interleaved runs, medians and spread reported (default 3; --runs too)
  Lifeboat's backups and restores are followed as "lifeboat backup VM --wait" follows them (GET
  /executions/{id} every 1 s, backing off to every 3 s; LIFEBOAT_POLL_INTERVAL_MS fixes the interval)
  and timed from what the stack records (Commit, endedAt, the runner's log), not from the polls
  idle         the local stack and its runner with nothing to do: CPU over 60 s (% of one core)
       npm run bench -- storm [--requests N] [--hosts N] [--max-backups N] [--max-backups-host N] [--clients N] [--owner USER]
  storm        backup requests over simulated hosts whose steps are answered at once: limits,
               starts/s, transitions, invocations and DynamoDB writes per backup, AWS cost
  --requests   backup requests (default 10000)
  --hosts      simulated hosts (default 1000)
  --max-backups, --max-backups-host   the deployment's limits (default 100 and 2)
  --clients    concurrent API clients sending the requests (default 32)
  --owner      a user (made by the bench) owning every VM: backups charged to their quota`;

/** The benchmarks by name. */
const BENCHMARKS: Record<
  string,
  (o: { sizeMiB: number; runs: number; log: (l: string) => void }) => Promise<unknown>
> = {
  full: runFull,
  incremental: runIncremental,
  idle: ({ log }) => runIdle({ log }),
  restore: runRestoreBench,
  ceph: runCeph,
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
  const bench = parsed.name === 'storm' ? runFull : BENCHMARKS[parsed.name];
  if (!bench) {
    process.stderr.write(`bench: unknown benchmark "${parsed.name}"\n${USAGE}\n`);
    return 2;
  }
  try {
    const summary =
      parsed.name === 'storm'
        ? await runStorm({ ...parsed.storm, sample: 300, log })
        : await bench({ sizeMiB: parsed.sizeMiB, runs: parsed.runs, log });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`bench: ${parsed.name} failed: ${(error as Error).stack ?? error}\n`);
    return 1;
  }
}

interface StormArgs {
  requests: number;
  hosts: number;
  maxBackups: number;
  maxBackupsHost: number;
  clients: number;
  owner?: string;
}

function positive(values: Record<string, unknown>, name: string, fallback: number): number {
  const n = Number(values[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

function parse(argv: string[]): {
  name: string;
  sizeMiB: number;
  runs: number;
  storm: StormArgs;
} {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'size-mib': { type: 'string' },
      runs: { type: 'string' },
      repeat: { type: 'string' },
      requests: { type: 'string' },
      hosts: { type: 'string' },
      'max-backups': { type: 'string' },
      'max-backups-host': { type: 'string' },
      clients: { type: 'string' },
      owner: { type: 'string' },
    },
  });
  const storm: StormArgs = {
    requests: positive(values, 'requests', 10_000),
    hosts: positive(values, 'hosts', 1000),
    maxBackups: positive(values, 'max-backups', 100),
    maxBackupsHost: positive(values, 'max-backups-host', 2),
    clients: positive(values, 'clients', 32),
    ...(typeof values.owner === 'string' && { owner: values.owner }),
  };
  if (positionals.length !== 1) throw new Error('name one benchmark');
  const sizeMiB = Number(values['size-mib'] ?? 4096);
  // --repeat and --runs are one option: the rounds of interleaved runs.
  const runs = Number(values.repeat ?? values.runs ?? 3);
  if (!Number.isInteger(sizeMiB) || sizeMiB < 16) throw new Error('--size-mib must be an integer >= 16');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--repeat must be a positive integer');
  return { name: positionals[0] as string, sizeMiB, runs, storm };
}

process.exitCode = await main(process.argv.slice(2));
