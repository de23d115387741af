/**
 * Disk driver for Ceph RBD images of libvirt domains (`<disk type='network'><source
 * protocol='rbd' name='pool/[namespace/]image'>`), on the host's Ceph cluster, as the client the
 * disk's `<auth username>` names (see `rbd-cli.ts`).
 *
 * Backup: one rbd snapshot per disk (`lifeboat-...`), taken inside the FS_FREEZE window; the
 * snapshot is immutable, so the VM keeps running on its image (or may start) while the datastore
 * reads it. A FULL is `rbd export SNAP -`, an increment `rbd export-diff --from-snap PARENT SNAP -`
 * (the "rbd diff v1" format), both handed to the datastore as `stream` sources (no temporary
 * copy on the host). A datastore that reads files only (rsync) gets a FULL as the snapshot
 * mounted read-only as a file (`rbd-file.ts`: read from Ceph as rsync reads it, no copy) and an
 * increment written into the work folder (changed data only). Stored names: `disk.<id>.rbd` (raw bytes of the image, what
 * `rbd import` reads), `disk.<id>.inc<N>.rbdiff` (what `rbd import-diff` reads) and, after a
 * flatten, `disk.<id>.rbd.qcow2`.
 *
 * Chains: the snapshot of an increment backup is named by its checkpoint and kept as the next
 * increment's base; once a point is stored, the image keeps only it and its parent of our
 * snapshots. A parent snapshot that is gone is `ChainBroken` (the runner then starts a new FULL).
 * A plain FULL's snapshot is removed by `release()`. Every snapshot is recorded in the work
 * folder before it is created, so `reconcile` removes what a crashed runner left, and nothing else.
 *
 * Restore into files needs no cluster: the FULL is the raw image, each increment is applied onto
 * it by `rbd-diff.ts`, and the result is converted to a checked qcow2.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Conflict, ValidationError } from '#core/errors.ts';
import { Cancelled, run } from '../exec.ts';
import { parseDomainXml } from './domain-xml.ts';
import type {
  BackupDisk,
  BackupVm,
  DiskDriver,
  InPlaceRestore,
  PointFile,
  PoolRestore,
  PreparedBackup,
  PreparedFile,
  PrepareOptions,
  RestoredDisk,
  StoredArtifact,
} from './driver.ts';
import { ChainBroken, DiskMismatch, DiskSnapshotFailed, DomainNotFound, UnsafeDiskImage } from './errors.ts';
import { freeze } from './freeze.ts';
import { checkStoredImage } from './qcow2-header.ts';
import {
  checkSnapshot,
  imageSpec,
  isMissing,
  isOurSnapshot,
  parseImage,
  Rbd,
  type RbdAccess,
  type RbdImage,
  SNAPSHOT_PREFIX,
} from './rbd-cli.ts';
import { applyRbdDiff } from './rbd-diff.ts';
import { mountSnapshot, type SnapshotFile, unmountLeftovers } from './rbd-file.ts';
import { prepareRbdInPlace, undoRbdInPlace } from './rbd-in-place.ts';
import { assertNewImage, importPoint } from './rbd-pool.ts';
import { OWN_FILE, type RbdRecord, readRbdRecord, removeRbdRecord, writeRbdRecord } from './rbd-record.ts';
import { writeQcow2 } from './restore-chain.ts';
import { DEFAULT_URI, domainState, domainXml, isActiveState, type ToolOptions } from './tools.ts';

/** One disk of a backup, as the domain on this host has it. */
interface RbdDisk {
  task: BackupDisk;
  image: RbdImage;
  rbd: Rbd;
}

const FULL = /^disk\.(\d+)\.rbd$/;
const FLATTENED = /^disk\.(\d+)\.rbd\.qcow2$/;
const INCREMENT = /^disk\.(\d+)\.inc(\d+)\.rbdiff$/;
/** The stored format of an increment (what `describeArtifact` answers). */
export const RBD_DIFF_FORMAT = 'rbd-diff';

export class RbdDriver implements DiskDriver {
  readonly name = 'rbd';
  private readonly rbd: Rbd;

  constructor(
    private readonly uri: string = DEFAULT_URI,
    access: RbdAccess = {},
  ) {
    this.rbd = new Rbd(access);
  }

  async prepareBackup(
    vm: BackupVm,
    disks: readonly BackupDisk[],
    options: PrepareOptions,
  ): Promise<PreparedBackup> {
    const tool: ToolOptions = { uri: this.uri, signal: options.signal };
    const signal = options.signal;
    const state = await domainState(vm.domain, tool);
    if (state === null) throw new DomainNotFound(`Domain '${vm.domain}' does not exist on this host`);
    const inc = options.increment;
    if (inc) {
      checkSnapshot(inc.checkpoint);
      if (inc.parent !== null) checkSnapshot(inc.parent);
      if (inc.parent === inc.checkpoint) {
        throw new ValidationError(`An increment's checkpoint '${inc.checkpoint}' cannot be its own parent`);
      }
    }
    const found = await this.checkDisks(vm.domain, disks, tool);
    // Leftovers of an earlier attempt of the same backup (a redelivered task) go first.
    await this.reconcile(options.workDir, vm.domain, { signal });
    if (inc?.parent) {
      for (const disk of found) {
        if (!(await this.hasSnapshot(disk, inc.parent, signal))) {
          throw new ChainBroken(
            `snapshot ${inc.parent} of ${imageSpec(disk.image)} (disk ${disk.task.target}) is gone: the chain cannot be followed`,
          );
        }
      }
    }
    const template = await domainXml(vm.domain, { ...tool, inactive: true });
    const snapshot = inc?.checkpoint ?? `${SNAPSHOT_PREFIX}full-${Date.now().toString(36)}-${randomSuffix()}`;
    const record: RbdRecord = {
      v: 1,
      domain: vm.domain,
      snapshots: found.map((d) => ({
        image: d.image,
        ...(d.rbd.clientId === undefined ? {} : { clientId: d.rbd.clientId }),
        name: snapshot,
      })),
    };
    await mkdir(options.workDir, { recursive: true, mode: 0o700 });
    await writeRbdRecord(options.workDir, record);
    const mounts: SnapshotFile[] = [];
    let released = false;
    const release = async (opts: { failed?: boolean } = {}) => {
      if (released) return;
      for (const mount of mounts) await mount.close();
      // A chain's new snapshot is the next increment's base, once its point is stored.
      if (inc && !opts.failed) {
        for (const disk of found) await this.prune(disk, [inc.checkpoint, inc.parent], signal);
      } else {
        await this.removeSnapshots(record, undefined);
      }
      await this.cleanFolder(options.workDir);
      released = true;
    };
    try {
      // The same name may be left by an attempt whose point was never recorded: taken again now.
      for (const disk of found) await this.removeSnapshot(disk, snapshot, signal);
      await this.snapshot(vm.domain, found, snapshot, state, options);
      const files: PreparedFile[] = [];
      for (const disk of found) {
        const size = (
          await disk.rbd.json<{ size: number }>(['info', imageSpec(disk.image, snapshot)], { signal })
        ).size;
        files.push(await this.source(disk, snapshot, size, options, mounts));
      }
      return {
        files,
        template,
        state: state === 'paused' ? 'SUSPENDED' : isActiveState(state) ? 'RUNNING' : 'POWEROFF',
        release,
      };
    } catch (error) {
      for (const mount of mounts) await mount.close().catch(() => {});
      await this.removeSnapshots(record, undefined).catch(() => {});
      await this.cleanFolder(options.workDir).catch(() => {});
      throw error;
    }
  }

  /** `disk.<id>.rbd` (FULL, raw), `disk.<id>.rbd.qcow2` (flattened FULL), `disk.<id>.inc<N>.rbdiff`. */
  describeArtifact(name: string): StoredArtifact | null {
    const full = FULL.exec(name);
    if (full) return { diskId: Number(full[1]), format: 'raw', increment: null };
    const flat = FLATTENED.exec(name);
    if (flat) return { diskId: Number(flat[1]), format: 'qcow2', increment: null };
    const inc = INCREMENT.exec(name);
    if (inc) return { diskId: Number(inc[1]), format: RBD_DIFF_FORMAT, increment: Number(inc[2]) };
    return null;
  }

  flattenedName(diskId: number): string {
    return `disk.${diskId}.rbd.qcow2`;
  }

  restoredFileName(base: string): string {
    return `${base}.qcow2`;
  }

  /**
   * The FULL as a raw file beside `toPath` (moved when raw; a flattened qcow2 FULL checked, then
   * converted), each increment applied in order, then converted into a checked qcow2 at `toPath`.
   * The inputs are consumed. Each increment after the first must start from the snapshot the
   * previous one led to (its diff names both); the FULL is raw bytes naming no snapshot, so the
   * first increment's fit rests on the chain order the control plane keeps.
   */
  async restorePoint(
    files: readonly PointFile[],
    toPath: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<RestoredDisk> {
    const [full, ...increments] = this.describePoint(files);
    if (await exists(toPath)) throw new Conflict(`Disk file ${toPath} already exists`);
    await mkdir(dirname(toPath), { recursive: true });
    const raw = `${toPath}.raw-partial`;
    try {
      if (full.format === 'qcow2') {
        await checkStoredImage(full.path, 'qcow2', 'full');
        await run(
          { file: 'qemu-img', args: ['convert', '-f', 'qcow2', '-O', 'raw', full.path, raw] },
          { signal: options.signal },
        );
        await rm(full.path, { force: true });
      } else {
        await moveFile(full.path, raw);
      }
      let previous: string | undefined;
      for (const file of increments) {
        const info = await applyRbdDiff(file.path, raw, {
          ...(previous === undefined ? {} : { expectFrom: previous }),
          signal: options.signal,
          name: file.name,
        });
        if (info.from === null)
          throw new UnsafeDiskImage(`${file.name} is not an increment (no base snapshot)`);
        previous = info.to ?? undefined;
        await rm(file.path, { force: true });
      }
      const size = (await stat(raw)).size;
      return await writeQcow2({ path: raw, format: 'raw' }, toPath, size, { ...options, move: true });
    } finally {
      await rm(raw, { force: true });
    }
  }

  /**
   * The new image's name checked and found free before anything is downloaded; `write` is `rbd
   * import` of the FULL, then `rbd import-diff` per increment (rbd-pool.ts).
   */
  async prepareToPool(
    pool: string,
    image: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<PoolRestore> {
    const target = { pool, image };
    return {
      image: await assertNewImage(this.rbd, target, options.signal),
      write: async (files, opts = {}) => importPoint(this.rbd, this.describePoint(files), target, opts),
    };
  }

  /**
   * The files of one point, as their stored names tell (untrusted: checked before any tool opens
   * them): the FULL first, then increments of the same disk in rising order; else ValidationError.
   */
  private describePoint(
    files: readonly PointFile[],
  ): [PointFile & StoredArtifact, ...(PointFile & StoredArtifact)[]] {
    const [full, ...increments] = files.map((file) => {
      const artifact = this.describeArtifact(file.name);
      if (!artifact) throw new ValidationError(`backup file "${file.name}" is not an rbd backup file`);
      return { ...file, ...artifact };
    });
    if (!full || full.increment !== null) throw new ValidationError('a chain needs its FULL backup first');
    let index = 0;
    for (const file of increments) {
      if (file.increment === null || file.diskId !== full.diskId || file.increment <= index) {
        throw new ValidationError(
          `backup file "${file.name}" is not the next increment of disk ${full.diskId}`,
        );
      }
      index = file.increment;
    }
    return [full, ...increments];
  }

  /** An in-place swap cut short is undone first (the old image back), then the backup's snapshots. */
  async reconcile(
    workDir: string,
    _domain?: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const done = await undoRbdInPlace(workDir, this.rbd);
    // A mounted snapshot first: its reader goes before the snapshot does.
    done.push(...(await unmountLeftovers(workDir)));
    const record = await readRbdRecord(workDir);
    if (record) done.push(...(await this.removeSnapshots(record, options.signal)));
    done.push(...(await this.cleanFolder(workDir)));
    return done;
  }

  prepareInPlace(
    domain: string,
    diskIds: readonly number[],
    options: { workDir: string; signal?: AbortSignal },
  ): Promise<InPlaceRestore> {
    return prepareRbdInPlace(domain, diskIds, options.workDir, this.rbd, {
      uri: this.uri,
      signal: options.signal,
    });
  }

  /** The task's disks as the live domain has them: rbd network disks with the same image. */
  private async checkDisks(
    domain: string,
    disks: readonly BackupDisk[],
    tool: ToolOptions,
  ): Promise<RbdDisk[]> {
    if (disks.length === 0) throw new ValidationError('A backup needs at least one disk');
    const live = parseDomainXml(await domainXml(domain, tool));
    return disks.map((disk) => {
      if ((disk.driver ?? 'qcow2') !== this.name || disk.format !== 'rbd') {
        throw new DiskMismatch(`Disk ${disk.id} (${disk.target}) of '${domain}' is not an rbd disk`);
      }
      const found = live.disks.find((d) => d.target === disk.target);
      if (found?.type !== 'network' || found.format !== 'rbd') {
        throw new DiskMismatch(`VM '${domain}' has no rbd disk ${disk.target}`);
      }
      if (found.source !== disk.source) {
        throw new DiskMismatch(`VM '${domain}' disk ${disk.target} is ${found.source}, not ${disk.source}`);
      }
      return { task: disk, image: parseImage(disk.source), rbd: this.rbd.as(found.authUser) };
    });
  }

  /** Freeze, one snapshot per disk, thaw (also on failure). */
  private async snapshot(
    domain: string,
    disks: readonly RbdDisk[],
    name: string,
    state: string,
    options: PrepareOptions,
  ): Promise<void> {
    const thaw = await freeze(domain, options.freeze, state, { uri: this.uri, signal: options.signal });
    try {
      for (const disk of disks) {
        await disk.rbd.run(['snap', 'create', '--no-progress', imageSpec(disk.image, name)], {
          signal: options.signal,
        });
      }
    } catch (error) {
      if (error instanceof Cancelled) throw error;
      throw new DiskSnapshotFailed(`Snapshot of VM '${domain}' failed: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      await thaw();
    }
  }

  /**
   * What the datastore reads for one disk: the export (or diff) of the snapshot as a stream; for
   * a datastore of files, the snapshot mounted as a file (a FULL, added to `mounts`) or the diff
   * written into the work folder (an increment: changed data only).
   */
  private async source(
    disk: RbdDisk,
    snapshot: string,
    size: number,
    options: PrepareOptions,
    mounts: SnapshotFile[],
  ): Promise<PreparedFile> {
    const id = disk.task.id;
    const spec = imageSpec(disk.image, snapshot);
    const inc = options.increment;
    if (!inc?.parent && options.fileSources) {
      const dir = join(options.workDir, `mnt-${id}`);
      await mkdir(dir, { mode: 0o700 });
      const mount = await mountSnapshot(disk.rbd, disk.image, snapshot, dir);
      mounts.push(mount);
      return {
        diskId: id,
        name: `disk.${id}.rbd`,
        source: { kind: 'file', path: mount.path },
        format: 'raw',
        virtualSize: size,
      };
    }
    if (!inc?.parent) {
      return {
        diskId: id,
        name: `disk.${id}.rbd`,
        source: {
          kind: 'stream',
          command: disk.rbd.streamCommand(['export', '--no-progress', spec, '-']),
          size,
        },
        format: 'raw',
        virtualSize: size,
      };
    }
    const index = inc.index ?? Number(/(\d+)$/.exec(inc.checkpoint)?.[1] ?? 1);
    const name = `disk.${id}.inc${index}.rbdiff`;
    const args = ['export-diff', '--no-progress', '--from-snap', checkSnapshot(inc.parent), spec];
    if (!options.fileSources) {
      return {
        diskId: id,
        name,
        source: { kind: 'stream', command: disk.rbd.streamCommand([...args, '-']), size },
        format: RBD_DIFF_FORMAT,
        virtualSize: size,
      };
    }
    // A datastore of files: the diff (changed data only) is written into the work folder.
    const path = join(options.workDir, name);
    await disk.rbd.transfer([...args, path], { signal: options.signal });
    return { diskId: id, name, source: { kind: 'file', path }, format: RBD_DIFF_FORMAT, virtualSize: size };
  }

  private async hasSnapshot(disk: RbdDisk, name: string, signal?: AbortSignal): Promise<boolean> {
    const snaps = await disk.rbd.json<{ name: string }[]>(['snap', 'ls', imageSpec(disk.image)], { signal });
    return snaps.some((s) => s.name === name);
  }

  /** Removes our snapshot `name` of the disk's image; true when there was one. */
  private async removeSnapshot(
    disk: { image: RbdImage; rbd: Rbd },
    name: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    try {
      await disk.rbd.run(['snap', 'rm', '--no-progress', imageSpec(disk.image, name)], { signal });
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /** Removes every snapshot of the record that exists; a line per snapshot removed. */
  private async removeSnapshots(record: RbdRecord, signal: AbortSignal | undefined): Promise<string[]> {
    const done: string[] = [];
    for (const snap of record.snapshots) {
      const disk = { image: snap.image, rbd: this.rbd.as(snap.clientId) };
      if (await this.removeSnapshot(disk, snap.name, signal)) {
        done.push(`removed snapshot ${imageSpec(snap.image, snap.name)}`);
      }
    }
    return done;
  }

  /** Keeps `keep` of our snapshots on the disk's image and removes the other `lifeboat-*` ones. */
  private async prune(disk: RbdDisk, keep: readonly (string | null)[], signal?: AbortSignal): Promise<void> {
    const snaps = await disk.rbd.json<{ name: string }[]>(['snap', 'ls', imageSpec(disk.image)], { signal });
    for (const { name } of snaps) {
      // Only names of our own shape: anything else (another tool's, an odd name) is left alone.
      if (keep.includes(name) || !isOurSnapshot(name)) continue;
      await this.removeSnapshot(disk, name, signal);
    }
  }

  /** Removes our files (and the folder, when that leaves it empty); a line per increment file. */
  private async cleanFolder(workDir: string): Promise<string[]> {
    const done = await unmountLeftovers(workDir);
    const names = await readdir(workDir).catch(() => [] as string[]);
    for (const name of names.filter((n) => OWN_FILE.test(n))) {
      await rm(join(workDir, name), { force: true });
      if (name.endsWith('.rbdiff')) done.push(`removed ${join(workDir, name)}`);
    }
    await removeRbdRecord(workDir);
    await rmdir(workDir).catch(() => {});
    return done;
  }
}

function randomSuffix(): string {
  return randomBytes(4).toString('hex');
}

async function moveFile(from: string, to: string): Promise<void> {
  await rename(from, to).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EXDEV') throw error;
    await run({ file: 'cp', args: ['--sparse=always', '--', from, to] });
    await rm(from);
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
