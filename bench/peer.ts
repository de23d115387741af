/**
 * The peer: Debian's `virtnbdbackup` (installed by scripts/bench.sh), the tool an operator would
 * otherwise script, backing up the same running VM to a local folder in the same benchmark run.
 * It reads the disk the same way (a libvirt pull-mode backup job, NBD), writes its own sparse
 * stream format, and keeps its checkpoints (qcow2 persistent bitmaps) for its increments.
 *
 * Levels: `full` and `inc` need a qcow2 disk (bitmaps); a raw disk can only be copied (`copy`,
 * with `--raw` so that raw-format disks are not skipped).
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '#drivers/exec.ts';
import { URI } from '../test/helpers/libvirt.ts';
import { qemuFolder } from './hand.ts';
import { timed } from './measure.ts';

export type PeerLevel = 'copy' | 'full' | 'inc';

/**
 * `virtnbdbackup` arguments for one backup of `domain` into `output`. Its scratch file and NBD
 * socket go to `work` (its defaults are shared /var/tmp paths); no progress bar on stderr.
 */
export function peerArgs(opts: {
  domain: string;
  level: PeerLevel;
  output: string;
  work: string;
  raw?: boolean;
  uri?: string;
}): string[] {
  return [
    '-U',
    opts.uri ?? URI,
    '-d',
    opts.domain,
    '-l',
    opts.level,
    '-o',
    opts.output,
    '-S',
    opts.work,
    '-f',
    join(opts.work, 'nbd.sock'),
    '--noprogress',
    ...(opts.raw ? ['--raw'] : []),
  ];
}

/** What one peer backup took and wrote. */
export interface PeerRun {
  seconds: number;
  /** Bytes of the data files it wrote for this backup (its stream files, not its logs). */
  bytes: number;
}

/** Sum of the sizes of the files directly in `dir` whose names pass `keep`. */
async function filesBytes(dir: string, keep: (name: string) => boolean): Promise<number> {
  let sum = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile() && keep(name)) sum += s.size;
  }
  return sum;
}

/** Runs one peer backup; `output` is created for a `copy`/`full` and must hold the chain for `inc`. */
export async function runPeer(opts: {
  domain: string;
  level: PeerLevel;
  output: string;
  work: string;
  raw?: boolean;
}): Promise<PeerRun> {
  if (opts.level !== 'inc') await mkdir(opts.output, { recursive: true });
  // virtnbdbackup has libvirt's QEMU create the socket and scratch file here.
  await qemuFolder(opts.work);
  const before = await filesBytes(opts.output, (n) => n.endsWith('.data'));
  try {
    const { seconds } = await timed(() =>
      run({ file: 'virtnbdbackup', args: peerArgs(opts) }, { timeoutMs: 60 * 60_000 }),
    );
    const bytes = (await filesBytes(opts.output, (n) => n.endsWith('.data'))) - before;
    return { seconds, bytes };
  } finally {
    await rm(opts.work, { recursive: true, force: true });
  }
}
