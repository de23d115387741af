/**
 * The hand pipeline: the same consistent read of a running VM that Lifeboat does, done by an
 * operator with libvirt's and restic's own tools and nothing of Lifeboat, so that the cost of
 * reading a running VM is told apart from Lifeboat's own.
 *
 * restic: `virsh backup-begin` with a pull-mode backup (the disk exported on a unix-socket NBD
 * server, copy-before-write into a scratch file), `nbdcopy nbd+unix:///vda?socket=... - |
 * restic backup --stdin --stdin-filename disk.0.raw` into a fresh repository (after `restic
 * init`, as the raw run and Lifeboat's first backup do), then `virsh domjobabort`.
 *
 * rsync reads files, not NBD exports: the hand equivalent is what an operator (and Lifeboat's
 * file-disk driver) does for it, an external disk-only snapshot so the disk file is stable,
 * `rsync -aS` of that file, then `virsh blockcommit --active --pivot` and the overlay removed.
 */
import { spawn } from 'node:child_process';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '#drivers/exec.ts';
import { virsh } from '../test/helpers/libvirt.ts';
import { timed } from './measure.ts';
import { finished, type RawTarget, rawRsync, resticArgs, withPassword } from './raw.ts';

/** The `<domainbackup>` of a pull-mode backup of one disk, served on a unix socket. */
export function pullBackupXml(target: string, socket: string, scratch: string): string {
  const esc = (v: string) => v.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
  return (
    `<domainbackup mode='pull'><server transport='unix' socket='${esc(socket)}'/>` +
    `<disks><disk name='${esc(target)}' backup='yes' type='file'><scratch file='${esc(scratch)}'/></disk></disks>` +
    '</domainbackup>'
  );
}

/** The NBD URI of the export of disk `target` (libvirt names an export after its disk). */
export function nbdUri(target: string, socket: string): string {
  return `nbd+unix:///${target}?socket=${encodeURI(socket)}`;
}

/** The two commands of the hand pipeline's copy, as argument arrays (no shell). */
export function handCopyCommands(
  uri: string,
  repoArgs: readonly string[],
  name: string,
): { nbdcopy: string[]; restic: string[] } {
  return {
    nbdcopy: [uri, '-'],
    restic: [...repoArgs, 'backup', '--stdin', '--stdin-filename', name],
  };
}

/** `virsh snapshot-create-as` arguments putting disk `target` (only) on overlay `file`. */
export function overlayArgs(domain: string, target: string, file: string): string[] {
  // virsh splits --diskspec on commas: a literal comma is written twice.
  return [
    'snapshot-create-as',
    domain,
    '--disk-only',
    '--atomic',
    '--no-metadata',
    '--diskspec',
    `${target},snapshot=external,file=${file.replaceAll(',', ',,')}`,
  ];
}

/** Seconds of one hand run, by step. */
export interface HandTiming {
  totalS: number;
  steps: Record<string, number>;
}

/** A folder QEMU (libvirt-qemu) may create its socket and scratch file in. */
export async function qemuFolder(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const id = async (flag: string) =>
    Number(
      (await run({ file: 'id', args: [flag, 'libvirt-qemu'] }).catch(() => ({ stdout: '' }))).stdout.trim(),
    );
  const [uid, gid] = [await id('-u'), await id('-g')];
  if (Number.isInteger(uid) && Number.isInteger(gid) && uid > 0) await chown(dir, uid, gid);
}

/** Ends the domain's backup job and waits until libvirt shows none. */
async function endBackupJob(domain: string): Promise<void> {
  await virsh('domjobabort', domain);
  for (let i = 0; i < 300; i++) {
    if (!/Job type:\s+(Bounded|Unbounded)/.test(await virsh('domjobinfo', domain).catch(() => ''))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the backup job of ${domain} did not end`);
}

/**
 * One hand run to restic: init of a fresh repository at `<base>/<vmId>`, pull-mode backup job,
 * nbdcopy piped into `restic backup --stdin`, job aborted. `work` must be reachable by QEMU.
 */
export async function handRestic(opts: {
  domain: string;
  diskTarget: string;
  work: string;
  target: RawTarget;
  password: string;
  name: string;
}): Promise<HandTiming> {
  const { domain, diskTarget, work } = opts;
  const args = resticArgs(opts.target);
  await qemuFolder(work);
  const socket = join(work, 'nbd.sock');
  const xml = join(work, 'backup.xml');
  await writeFile(xml, pullBackupXml(diskTarget, socket, join(work, `scratch-${diskTarget}.qcow2`)));
  const steps: Record<string, number> = {};
  try {
    await withPassword(opts.password, async (env) => {
      steps.init = (
        await timed(() =>
          finished(
            spawn('restic', [...args, 'init', '--repository-version', '2'], {
              env,
              stdio: ['ignore', 'ignore', 'pipe'],
            }),
            'restic init',
          ),
        )
      ).seconds;
      steps.begin = (await timed(() => virsh('backup-begin', domain, xml))).seconds;
      let begun = true;
      try {
        steps.copy = (
          await timed(async () => {
            const cmd = handCopyCommands(nbdUri(diskTarget, socket), args, opts.name);
            const nbdcopy = spawn('nbdcopy', cmd.nbdcopy, { stdio: ['ignore', 'pipe', 'pipe'] });
            const restic = spawn('restic', cmd.restic, { env, stdio: [nbdcopy.stdout, 'ignore', 'pipe'] });
            // Our copy of the pipe's read end goes: restic holds its own (see raw.ts).
            nbdcopy.stdout?.destroy();
            await Promise.all([finished(nbdcopy, 'nbdcopy'), finished(restic, 'restic backup --stdin')]);
          })
        ).seconds;
        steps.abort = (await timed(() => endBackupJob(domain))).seconds;
        begun = false;
      } finally {
        if (begun) await endBackupJob(domain).catch(() => {});
      }
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { totalS: Object.values(steps).reduce((a, b) => a + b, 0), steps };
}

/**
 * One hand run to rsync: external snapshot of disk `diskTarget` into `work`, `rsync -aS` of the
 * now stable `disk` to `<base>/<vmId>/raw/<name>` as the raw run does, blockcommit and pivot back.
 */
export async function handRsync(opts: {
  domain: string;
  diskTarget: string;
  disk: string;
  work: string;
  target: RawTarget;
  name: string;
}): Promise<HandTiming> {
  const { domain, diskTarget, work } = opts;
  await qemuFolder(work);
  const overlay = join(work, `overlay-${diskTarget}.qcow2`);
  const steps: Record<string, number> = {};
  try {
    steps.snapshot = (await timed(() => virsh(...overlayArgs(domain, diskTarget, overlay)))).seconds;
    let onOverlay = true;
    try {
      steps.rsync = await rawRsync(opts.target, opts.disk, 'raw', opts.name);
      steps.commit = (
        await timed(() => virsh('blockcommit', domain, diskTarget, '--active', '--pivot', '--wait'))
      ).seconds;
      onOverlay = false;
    } finally {
      if (onOverlay)
        await virsh('blockcommit', domain, diskTarget, '--active', '--pivot', '--wait').catch(() => {});
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { totalS: Object.values(steps).reduce((a, b) => a + b, 0), steps };
}
