/**
 * The qcow2 driver's records in a backup's work folder, and the one clean-up routine used both by
 * `release()` and by `reconcile()` after a crash: it looks at what the domain really uses (live
 * and persistent definition), commits any overlay of the folder back into its base, stops lock
 * holders, and removes only the driver's own files.
 */
import { chmod, mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { run } from '../exec.ts';
import { abortBackupJob, deleteCheckpoint } from './cbt.ts';
import { parseDomainXml } from './domain-xml.ts';
import { DiskSnapshotFailed } from './errors.ts';
import {
  domainState,
  domainXml,
  imageInfo,
  isActiveState,
  isPersistent,
  type ToolOptions,
  virsh,
} from './tools.ts';

const STATE_FILE = 'lifeboat-disk.json';
/** Our file names in a work folder: nothing else there is ever removed. */
const OWN_FILE =
  /^(lifeboat-disk\.json|overlay-[a-z0-9]+\.qcow2|lock-[a-z0-9]+\.(pid|sock)|domain-\d+\.xml|disk\.\d+\.inc\d+\.qcow2|backup\.xml|checkpoint\.xml|qsd\.(pid|sock))$/;
/** Pull-mode backups keep their NBD socket and scratch files in this sub-folder (QEMU writes there). */
export const PULL_DIR = 'pull';
const OWN_PULL_FILE = /^(nbd\.sock|scratch-[a-z0-9]+\.qcow2)$/;

export const WorkRecord = z.object({
  v: z.literal(1),
  domain: z.string().min(1),
  disks: z.array(z.object({ target: z.string(), base: z.string(), format: z.string(), overlay: z.string() })),
  /** The checkpoint this backup creates (incremental chains): removed by reconcile when its job was left running. */
  checkpoint: z.string().optional(),
  /**
   * INCREMENT_MODE=SNAPSHOT: this backup puts each disk on `<base>.<checkpoint>.qcow2` (over
   * `<base>.<parent>.qcow2`, or the base for a chain start). `released` is set once the backup is
   * done: settling then commits the parent's overlay away instead of undoing the new one.
   */
  snapshot: z.object({ parent: z.string().nullable(), released: z.boolean().optional() }).optional(),
});
export type WorkRecord = z.infer<typeof WorkRecord>;

export const overlayPath = (workDir: string, target: string) => join(workDir, `overlay-${target}.qcow2`);
export const lockPidPath = (workDir: string, target: string) => join(workDir, `lock-${target}.pid`);
export const lockSocketPath = (workDir: string, target: string) => join(workDir, `lock-${target}.sock`);

/** Mode of the folders QEMU (libvirt-qemu) must pass through to the files in a work folder: search, no listing. */
export const QEMU_REACHABLE_MODE = 0o711;

/**
 * Creates `dir` and its missing parents with exactly {@link QEMU_REACHABLE_MODE}, whatever the
 * umask: the systemd unit runs the runner with `UMask=0077`, which would leave them 0700 and QEMU
 * unable to open the overlays (or NBD sockets, scratch files) below. Existing folders are left as they are.
 */
export async function makeQemuReachableDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: QEMU_REACHABLE_MODE });
  if (!first) return;
  for (let current = dir; ; current = dirname(current)) {
    await chmod(current, QEMU_REACHABLE_MODE);
    if (current === first || current === dirname(current)) break;
  }
}

/** Writes the record before anything is created, so a crash at any later point is recoverable. */
export async function writeRecord(workDir: string, record: WorkRecord): Promise<void> {
  await writeFile(join(workDir, STATE_FILE), JSON.stringify(record), { mode: 0o600 });
}

/** The record of a work folder, or undefined when there is none (or it does not parse). */
export async function readRecord(workDir: string): Promise<WorkRecord | undefined> {
  try {
    return WorkRecord.parse(JSON.parse(await readFile(join(workDir, STATE_FILE), 'utf8')));
  } catch {
    return undefined;
  }
}

/** See `DiskDriver.reconcile`. */
export async function cleanWorkDir(
  workDir: string,
  domainHint: string | undefined,
  options: ToolOptions = {},
): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(workDir);
  } catch {
    return [];
  }
  const done: string[] = [];
  const record = await readRecord(workDir);
  for (const name of names.filter((n) => /^(lock-[a-z0-9]+|qsd)\.pid$/.test(n))) {
    if (await stopLockHolder(join(workDir, name), workDir)) done.push(`stopped ${name.slice(0, -4)}`);
  }
  const domains = domainHint ? [domainHint] : record ? [record.domain] : await domainsUsing(workDir, options);
  // A backup job still running was interrupted: end it, and drop the checkpoint it created
  // (its backup never completed, so no chain may follow it).
  for (const domain of record?.checkpoint ? domains : []) {
    if (!(await abortBackupJob(domain, options).catch(() => false))) continue;
    done.push(`domjobabort ${domain}`);
    const sources = record?.disks.map((d) => d.base) ?? [];
    await deleteCheckpoint(domain, record?.checkpoint as string, sources, options);
    done.push(`removed checkpoint ${record?.checkpoint}`);
  }
  const kept = new Set<string>();
  for (const domain of domains) {
    const result = await commitOverlays(domain, workDir, record, options);
    done.push(...result.done);
    for (const path of result.kept) kept.add(path);
  }
  for (const name of names.filter((n) => OWN_FILE.test(n))) {
    const path = join(workDir, name);
    if (kept.has(path)) continue;
    await rm(path, { force: true });
    if (name.startsWith('overlay-') || name.startsWith('disk.')) done.push(`removed ${path}`);
  }
  if (names.includes(PULL_DIR)) {
    const pull = join(workDir, PULL_DIR);
    for (const name of (await readdir(pull).catch(() => [] as string[])).filter((n) =>
      OWN_PULL_FILE.test(n),
    )) {
      await rm(join(pull, name), { force: true });
    }
    await rmdir(pull).catch(() => {});
  }
  if (kept.size > 0) {
    throw new DiskSnapshotFailed(
      `Could not commit ${[...kept].join(', ')} back into the VM's disks; kept them for another reconcile`,
    );
  }
  await rmdir(workDir).catch(() => {});
  return done;
}

/** Overlays of `workDir` the domain uses, committed back; `kept` lists those that could not be. */
async function commitOverlays(
  domain: string,
  workDir: string,
  record: WorkRecord | undefined,
  options: ToolOptions,
): Promise<{ done: string[]; kept: string[] }> {
  const done: string[] = [];
  const kept: string[] = [];
  const inDir = (path?: string) => path?.startsWith(`${workDir}/`) === true;
  const state = await domainState(domain, options);
  if (state === null) return { done, kept };
  if (isActiveState(state)) {
    const live = parseDomainXml(await domainXml(domain, options));
    for (const disk of live.disks.filter((d) => inDir(d.source))) {
      try {
        // Commits the overlay into the file right under it (--shallow: never further down a
        // chain, into a template image other VMs share) and pivots the VM back onto that file.
        await virsh(
          ['blockcommit', domain, disk.target, '--active', '--shallow', '--pivot', '--wait'],
          options,
        );
        done.push(`blockcommit ${domain} ${disk.target}`);
      } catch (error) {
        if (disk.source) kept.push(disk.source);
        done.push(`blockcommit ${domain} ${disk.target} failed: ${(error as Error).message}`);
      }
    }
  }
  if (!(await isPersistent(domain, options))) return { done, kept };
  // The persistent definition follows the snapshot too: point it back at the base files.
  const xml = await domainXml(domain, { ...options, inactive: true, securityInfo: true });
  const stale = parseDomainXml(xml).disks.filter((d) => inDir(d.source) && !kept.includes(d.source ?? ''));
  if (stale.length === 0) return { done, kept };
  const activeNow = isActiveState(await domainState(domain, options));
  let fixed = xml;
  for (const disk of stale) {
    const overlay = disk.source as string;
    const fromRecord = record?.disks.find((d) => d.overlay === overlay);
    let base = fromRecord?.base;
    let format = fromRecord?.format;
    try {
      if (!activeNow) {
        const info = await imageInfo(overlay, { format: 'qcow2', signal: options.signal });
        base ??= info['full-backing-filename'];
        format ??= info['backing-filename-format'];
        // Guest writes made between the snapshot and the VM's stop live only in the overlay.
        await run({ file: 'qemu-img', args: ['commit', '-f', 'qcow2', overlay] }, { signal: options.signal });
        done.push(`qemu-img commit ${overlay}`);
      }
      if (!base || !format) throw new Error(`no base file known for ${overlay}`);
      fixed = pointDiskAt(fixed, disk.target, base, format);
    } catch (error) {
      kept.push(overlay);
      done.push(`commit ${overlay} failed: ${(error as Error).message}`);
    }
  }
  if (fixed !== xml) {
    const file = join(workDir, `domain-${process.pid}.xml`);
    // Holds security info (passwords): 0600 and removed right after.
    await writeFile(file, fixed, { mode: 0o600 });
    try {
      await virsh(['define', file], options);
      done.push(`redefined ${domain} on its base disks`);
    } finally {
      await rm(file, { force: true });
    }
  }
  return { done, kept };
}

/**
 * Rewrites the `<disk>` element of `target` in a libvirt XML to use `path` in `format`, with no
 * backing chain (libvirt probes it again). Works on libvirt's own formatting of `dumpxml`.
 */
export function pointDiskAt(xml: string, target: string, path: string, format: string): string {
  const disks = xml.match(/<disk\b[\s\S]*?<\/disk>/g) ?? [];
  const disk = disks.find((d) => new RegExp(`<target\\s+dev=['"]${target}['"]`).test(d));
  if (!disk) throw new Error(`disk ${target} not found in the domain XML`);
  const escaped = path.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
  const updated = disk
    .replace(/<source\s+file=(['"])[^'"]*\1/, `<source file='${escaped}'`)
    .replace(/(<driver\b[^>]*\btype=)(['"])[^'"]*\2/, `$1'${format}'`)
    .replace(/\s*<backingStore\b[^>]*\/>/g, '')
    .replace(/\s*<backingStore\b[\s\S]*<\/backingStore>/g, '');
  return xml.replace(disk, updated);
}

/** Stops a lock holder (qemu-nbd) or an offline increment's qemu-storage-daemon by its pid file, after checking the pid is really ours. */
async function stopLockHolder(pidFile: string, workDir: string): Promise<boolean> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const ours = cmdline.includes('qemu-nbd') || cmdline.includes('qemu-storage-daemon');
  if (!ours || !cmdline.includes(workDir)) return false;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50; i++) {
    if (!(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  process.kill(pid, 'SIGKILL');
  return true;
}

/** Domains whose live or persistent XML names a file of `workDir` (when our record is lost). */
async function domainsUsing(workDir: string, options: ToolOptions): Promise<string[]> {
  const names = (await virsh(['list', '--all', '--name'], options)).split('\n').filter((n) => n.trim());
  const found: string[] = [];
  for (const name of names.map((n) => n.trim())) {
    const xmls = await Promise.all([
      domainXml(name, options).catch(() => ''),
      domainXml(name, { ...options, inactive: true }).catch(() => ''),
    ]);
    if (xmls.some((x) => x.includes(`${workDir}/`))) found.push(name);
  }
  return found;
}
