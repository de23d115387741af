/**
 * Changed-block tracking for file disks: libvirt checkpoints backed by qemu persistent dirty
 * bitmaps (one bitmap per checkpoint and disk, named like the checkpoint).
 *
 * RUNNING VM, chain start: a libvirt PULL-mode backup with a new checkpoint; libvirt takes the
 * point in time and the checkpoint in one step, and exports each disk on an NBD socket
 * (copy-before-write into a scratch file: only blocks the guest rewrites during the stream are
 * kept). The datastore streams it with nbdcopy; `release()` ends the job (`domjobabort`).
 * RUNNING VM, increment: a PUSH-mode backup `<incremental>parent</incremental>` with a new
 * checkpoint writes only the changed clusters of each disk into `disk.<id>.inc<N>.qcow2` in the
 * work folder (changed data only); its backing reference to the live disk is then dropped.
 * POWEROFF VM: libvirt cannot create checkpoints of an inactive domain, so the bitmaps are made
 * by qemu (`qemu-img bitmap --add` at chain start, a qemu-storage-daemon transaction for an
 * increment, see `offline-increment.ts`) and the checkpoint metadata is redefined in libvirt, so
 * a later running increment follows it as if libvirt had made it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { Cancelled, ExecError, run } from '../exec.ts';
import type { BackupDisk } from './driver.ts';
import { ChainBroken, DiskSnapshotFailed } from './errors.ts';
import { type ToolOptions, virsh } from './tools.ts';

/** Names of the domain's libvirt checkpoints. */
export async function listCheckpoints(domain: string, tool: ToolOptions): Promise<string[]> {
  const out = await virsh(['checkpoint-list', domain, '--name'], tool);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

const BitmapInfo = z.object({
  'format-specific': z
    .object({
      data: z
        .object({ bitmaps: z.array(z.object({ name: z.string(), flags: z.array(z.string()) })).optional() })
        .optional(),
    })
    .optional(),
});

/** The persistent bitmaps stored in a qcow2 file, by name, with their flags. */
export async function imageBitmaps(
  path: string,
  options: { shared: boolean; signal?: AbortSignal },
): Promise<Map<string, string[]>> {
  const args = ['info', '--output=json', ...(options.shared ? ['-U'] : []), '-f', 'qcow2', path];
  const { stdout } = await run({ file: 'qemu-img', args }, { signal: options.signal });
  const bitmaps = BitmapInfo.parse(JSON.parse(stdout))['format-specific']?.data?.bitmaps ?? [];
  return new Map(bitmaps.map((b) => [b.name, b.flags]));
}

/**
 * Throws {@link ChainBroken} unless `parent` can be followed for every disk: a libvirt
 * checkpoint of that name tracking the disk, and its bitmap in the disk file (consistent, when
 * the VM is off: an `in-use` flag then means QEMU stopped without saving it).
 */
export async function assertParent(
  domain: string,
  parent: string,
  disks: readonly BackupDisk[],
  active: boolean,
  tool: ToolOptions,
): Promise<void> {
  if (!(await listCheckpoints(domain, tool)).includes(parent)) {
    throw new ChainBroken(
      `VM '${domain}' has no checkpoint '${parent}' (VM moved, recreated or checkpoint deleted)`,
    );
  }
  const xml = await virsh(['checkpoint-dumpxml', domain, parent, '--no-domain'], tool);
  for (const disk of disks) {
    if (disk.format !== 'qcow2')
      throw new ChainBroken(`Disk ${disk.target} of '${domain}' is raw: no bitmap`);
    const entry = new RegExp(`<disk\\s+name=['"]${disk.target}['"][^>]*checkpoint=['"]bitmap['"]`).test(xml);
    if (!entry)
      throw new ChainBroken(`Checkpoint '${parent}' of '${domain}' does not track disk ${disk.target}`);
    // A running QEMU keeps its bitmaps in memory (the file shows them only after it stops):
    // then libvirt checks them when the job starts, and its refusal is a ChainBroken too.
    if (active) continue;
    const flags = (await imageBitmaps(disk.source, { shared: false, signal: tool.signal })).get(parent);
    if (!flags) {
      throw new ChainBroken(`Disk ${disk.source} has no bitmap '${parent}' (disk replaced?)`);
    }
    if (flags.includes('inconsistent') || flags.includes('in-use')) {
      throw new ChainBroken(`Bitmap '${parent}' of ${disk.source} is inconsistent (unclean stop?)`);
    }
  }
}

/** `<domaincheckpoint>` tracking the selected disks only. */
export function checkpointXml(
  name: string,
  selected: readonly string[],
  allTargets: readonly string[],
  parent?: string | null,
): string {
  const disks = allTargets
    .map((t) =>
      selected.includes(t)
        ? `<disk name='${t}' checkpoint='bitmap' bitmap='${name}'/>`
        : `<disk name='${t}' checkpoint='no'/>`,
    )
    .join('');
  const parentXml = parent ? `<parent><name>${parent}</name></parent>` : '';
  const created = `<creationTime>${Math.floor(Date.now() / 1000)}</creationTime>`;
  return `<domaincheckpoint><name>${name}</name>${parentXml}${created}<disks>${disks}</disks></domaincheckpoint>`;
}

/** Starts a libvirt backup job (push or pull) with a new checkpoint; errors naming a bitmap or checkpoint are a broken chain. */
export async function backupBegin(
  domain: string,
  workDir: string,
  backup: string,
  checkpoint: string,
  tool: ToolOptions,
): Promise<void> {
  const backupFile = join(workDir, 'backup.xml');
  const checkpointFile = join(workDir, 'checkpoint.xml');
  await writeFile(backupFile, backup, { mode: 0o600 });
  await writeFile(checkpointFile, checkpoint, { mode: 0o600 });
  try {
    await virsh(['backup-begin', domain, backupFile, checkpointFile], tool);
  } catch (error) {
    if (error instanceof Cancelled) throw error;
    const detail = error instanceof ExecError ? error.stderrTail : (error as Error).message;
    if (/bitmap|checkpoint/i.test(detail) && backup.includes('<incremental>')) {
      throw new ChainBroken(`Increment of '${domain}' refused by libvirt: ${detail}`, { cause: error });
    }
    throw new DiskSnapshotFailed(`Backup of VM '${domain}' could not start: ${detail}`, { cause: error });
  }
}

/** Waits for the domain's backup job to end; throws unless it completed. */
export async function waitBackupJob(domain: string, tool: ToolOptions): Promise<void> {
  try {
    while (/Job type:\s+(Bounded|Unbounded)/.test(await virsh(['domjobinfo', domain], { uri: tool.uri }))) {
      if (tool.signal?.aborted) throw new Cancelled(`Backup of '${domain}' was cancelled`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await abortBackupJob(domain, { uri: tool.uri });
    throw error;
  }
  const done = await virsh(['domjobinfo', domain, '--completed'], { uri: tool.uri });
  if (!/Job type:\s+Completed/.test(done)) {
    throw new DiskSnapshotFailed(`Backup job of VM '${domain}' did not complete: ${done.trim()}`);
  }
}

/** Ends a running backup job of the domain; true when there was one. */
export async function abortBackupJob(domain: string, tool: ToolOptions): Promise<boolean> {
  const info = await virsh(['domjobinfo', domain], tool).catch(() => '');
  if (!/Job type:\s+(Bounded|Unbounded)/.test(info) || !/Operation:\s+Backup/.test(info)) return false;
  await virsh(['domjobabort', domain], tool).catch(() => {});
  for (let i = 0; i < 100; i++) {
    const now = await virsh(['domjobinfo', domain], tool).catch(() => '');
    if (!/Job type:\s+(Bounded|Unbounded)/.test(now)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/**
 * Adds bitmap `name` to each disk of a stopped VM and records the checkpoint in libvirt. The
 * VM must stay off meanwhile (the caller locks the disks next, and fails if it started).
 */
export async function createOfflineCheckpoint(
  domain: string,
  disks: readonly BackupDisk[],
  allTargets: readonly string[],
  name: string,
  parent: string | null,
  workDir: string,
  tool: ToolOptions,
): Promise<void> {
  for (const disk of disks) {
    if (disk.format !== 'qcow2')
      throw new ChainBroken(`Disk ${disk.target} of '${domain}' is raw: no bitmap`);
    // A bitmap of that name with no checkpoint is the leftover of a crashed attempt of this backup.
    if ((await imageBitmaps(disk.source, { shared: false, signal: tool.signal })).has(name)) {
      await run({ file: 'qemu-img', args: ['bitmap', '--remove', '-f', 'qcow2', disk.source, name] }, tool);
    }
    await run({ file: 'qemu-img', args: ['bitmap', '--add', '-f', 'qcow2', disk.source, name] }, tool);
  }
  await redefineCheckpoint(domain, disks, allTargets, name, parent, workDir, tool);
}

/** Records in libvirt a checkpoint whose bitmaps qemu already made (VM off). */
export async function redefineCheckpoint(
  domain: string,
  disks: readonly BackupDisk[],
  allTargets: readonly string[],
  name: string,
  parent: string | null,
  workDir: string,
  tool: ToolOptions,
): Promise<void> {
  const file = join(workDir, 'checkpoint.xml');
  const targets = disks.map((d) => d.target);
  await writeFile(file, checkpointXml(name, targets, allTargets, parent), { mode: 0o600 });
  await virsh(['checkpoint-create', domain, file, '--redefine'], tool);
}

/**
 * Removes checkpoint `name` and its bitmaps (libvirt merges them into the parent's where needed);
 * for a stopped VM, libvirt only drops the metadata and the bitmaps are removed with qemu-img.
 */
export async function deleteCheckpoint(
  domain: string,
  name: string,
  sources: readonly string[],
  tool: ToolOptions,
): Promise<void> {
  if (!(await listCheckpoints(domain, tool).catch(() => [] as string[])).includes(name)) return;
  try {
    await virsh(['checkpoint-delete', domain, name], tool);
    return;
  } catch {
    await virsh(['checkpoint-delete', domain, name, '--metadata'], tool);
  }
  for (const source of sources) {
    await run({ file: 'qemu-img', args: ['bitmap', '--remove', '-f', 'qcow2', source, name] }, tool).catch(
      () => {},
    );
  }
}
