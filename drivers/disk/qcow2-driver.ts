/**
 * Disk driver for file disks (qcow2 and raw) of libvirt domains.
 *
 * RUNNING (or paused) VM: one atomic disk-only external snapshot of the selected disks puts the
 * guest's writes into overlays in the work folder; the original files are then stable and are
 * handed out as they are (`disk.<id>.<format>`). `release()` commits each overlay back with
 * `blockcommit --active --pivot` and deletes it, so the VM runs on its own files again.
 *
 * POWEROFF VM: the files themselves are the sources. So that the domain cannot start and write
 * into them while the datastore reads them, a `qemu-nbd` (no client ever connects) holds QEMU's
 * image lock on each file until `release()`: `virsh start` fails meanwhile with "Failed to get
 * write lock" rather than silently corrupting the backup.
 *
 * A disk whose file has a backing file (a VM cloned from a template image) is not whole in its own
 * file: it is exported instead, chain and all, by a read-only `qemu-nbd` on the (stable) file, as
 * an `nbd` source named `disk.<id>.raw` that the datastore streams with nbdcopy.
 *
 * Incremental chains: INCREMENT_MODE=CBT in `chain-backup.ts` / `cbt.ts`, INCREMENT_MODE=SNAPSHOT
 * (persistent tracking overlays beside the disks) in `snapshot-mode.ts`.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Conflict, ValidationError } from '#core/errors.ts';
import { Cancelled, ExecError, run } from '../exec.ts';
import { abortBackupJob, deleteCheckpoint } from './cbt.ts';
import { checkpointBeforeSnapshot, prepareChain } from './chain-backup.ts';
import { parseDomainXml } from './domain-xml.ts';
import type {
  BackupDisk,
  BackupVm,
  DiskDriver,
  InPlaceRestore,
  PointFile,
  PreparedBackup,
  PreparedFile,
  PrepareOptions,
  RestoredDisk,
  StoredArtifact,
} from './driver.ts';
import { DiskMismatch, DiskSnapshotFailed, DomainNotFound } from './errors.ts';
import { freeze } from './freeze.ts';
import { prepareInPlace, undoInPlace } from './in-place.ts';
import { checkStoredImage } from './qcow2-header.ts';
import { restoreChain, writeQcow2 } from './restore-chain.ts';
import { markReleased, prepareSnapshot, settleForBackup, settleRecord } from './snapshot-mode.ts';
import {
  DEFAULT_URI,
  domainState,
  domainXml,
  imageInfo,
  isActiveState,
  type ToolOptions,
  virsh,
} from './tools.ts';
import {
  cleanWorkDir,
  lockPidPath,
  lockSocketPath,
  makeQemuReachableDir,
  overlayPath,
  pointDiskAt,
  writeRecord,
} from './work-dir.ts';

export class Qcow2Driver implements DiskDriver {
  readonly name = 'qcow2';
  constructor(private readonly uri: string = DEFAULT_URI) {}

  async prepareBackup(
    vm: BackupVm,
    disks: readonly BackupDisk[],
    options: PrepareOptions,
  ): Promise<PreparedBackup> {
    const tool: ToolOptions = { uri: this.uri, signal: options.signal };
    const inc = options.increment;
    if (inc && inc.parent === inc.checkpoint) {
      throw new ValidationError(`An increment's checkpoint '${inc.checkpoint}' cannot be its own parent`);
    }
    const snap = inc?.mode === 'SNAPSHOT' ? inc : undefined;
    // A SNAPSHOT attempt left by a crash changes what the disks run on: undone before any look.
    await settleRecord(options.workDir, tool);
    // One look at the domain, its three reads at once (each virsh call costs a connection); read
    // again only after something below changed it.
    const look = () =>
      Promise.all([
        domainState(vm.domain, tool),
        domainXml(vm.domain, tool),
        domainXml(vm.domain, { ...tool, inactive: true }),
      ]).catch((error: unknown) => {
        throw error instanceof DomainNotFound
          ? new DomainNotFound(`Domain '${vm.domain}' does not exist on this host`)
          : error;
      });
    const [state, firstLive, firstInactive] = await look();
    let [live, inactive] = [firstLive, firstInactive];
    if (state === null) throw new DomainNotFound(`Domain '${vm.domain}' does not exist on this host`);
    const active = isActiveState(state);
    // Tracking overlays (SNAPSHOT) are accepted under a SNAPSHOT increment only, else committed back.
    const settled = await settleForBackup(vm.domain, disks, snap ? snap.parent : undefined, tool, {
      state,
      xml: live,
    });
    const { tops } = settled;
    if (settled.done.length > 0) [, live, inactive] = await look();
    const checked = await this.checkDisks(vm.domain, disks, active, options.workDir, tool, tops, live);
    const { exported } = checked;
    let files = checked.files;
    // Captured before the snapshot, so it names the original files, never our overlays.
    let template = inactive;
    for (const disk of disks.filter((d) => tops.has(d.target))) {
      template = pointDiskAt(template, disk.target, disk.source, disk.format);
    }
    // A plain FULL hands out exactly these files: the datastore may get ready meanwhile.
    if (!inc) options.onFiles?.(files, template);
    // Leftovers of an earlier attempt of the same backup (a redelivered task) go first.
    const cleaned = await cleanWorkDir(options.workDir, vm.domain, { uri: this.uri });
    // The snapshot names every disk of the live XML: read again if the cleaning changed it.
    const snapshotXml = cleaned.length > 0 ? undefined : live;
    // QEMU (libvirt-qemu) must reach the overlays: search permission, no listing, under any umask.
    await makeQemuReachableDir(options.workDir);
    await writeRecord(options.workDir, {
      v: 1,
      domain: vm.domain,
      disks: disks.map((d) => ({
        target: d.target,
        base: d.source,
        format: d.format,
        overlay: overlayPath(options.workDir, d.target),
      })),
      checkpoint: inc?.checkpoint,
      snapshot: snap ? { parent: snap.parent } : undefined,
    });
    const holders: { abort: AbortController; done: Promise<unknown> }[] = [];
    let pulling = false;
    let created = false;
    let prepared = false;
    let failed = false;
    const releaseOnce = once(async () => {
      // A pull-mode job ends here, normally: its checkpoint stays for the next increment.
      if (pulling) await abortBackupJob(vm.domain, { uri: this.uri });
      for (const holder of holders) holder.abort.abort();
      await Promise.all(holders.map((h) => h.done));
      // A SNAPSHOT backup handed out keeps its new overlays; a failed prepare undoes them.
      if (prepared && !failed) await markReleased(options.workDir);
      await this.clean(options.workDir, vm.domain, {});
    });
    const release = (opts?: { failed?: boolean }) => {
      failed ||= opts?.failed === true;
      return releaseOnce();
    };
    try {
      const sizes = new Map(files.map((f) => [f.diskId, f.virtualSize]));
      const chainCtx = inc && {
        domain: vm.domain,
        disks,
        sizes,
        workDir: options.workDir,
        freeze: options.freeze,
        checkpoint: inc.checkpoint,
        state,
        tool,
      };
      // A running VM's chain start is an NBD export, unless the datastore reads files only.
      const snapshotStart =
        inc !== undefined && inc.parent === null && active && options.fileSources === true;
      if (snap) {
        const index = snap.index ?? Number(/(\d+)$/.exec(snap.checkpoint)?.[1] ?? 1);
        const increment = await prepareSnapshot({
          domain: vm.domain,
          disks,
          sizes,
          state,
          freeze: options.freeze,
          checkpoint: snap.checkpoint,
          parent: snap.parent,
          index,
          tool,
        });
        files = increment ?? files;
        // A chain start hands out the bases; those with a backing file are served by qemu-nbd.
        for (const disk of increment ? [] : disks.filter((d) => exported.has(d.target))) {
          holders.push(await this.holdLock(disk, options.workDir));
        }
      } else if (inc && chainCtx && !snapshotStart) {
        created = true;
        const chained = await prepareChain(chainCtx, inc, {
          pulling: () => {
            pulling = true;
          },
          lock: async () => {
            for (const disk of disks) holders.push(await this.holdLock(disk, options.workDir));
          },
        });
        files = chained ?? files; // a stopped VM's chain start hands out its locked files
      } else if (active) {
        if (chainCtx) {
          created = true;
          await checkpointBeforeSnapshot(chainCtx);
        }
        await this.snapshot(vm.domain, disks, state, options, tool, snapshotXml);
        // Exports of the now-stable files; they are stopped before the commit back.
        for (const disk of disks.filter((d) => exported.has(d.target))) {
          holders.push(await this.holdLock(disk, options.workDir));
        }
      } else {
        for (const disk of disks) holders.push(await this.holdLock(disk, options.workDir));
        // It may have started between our look and the lock: then the lock failed, or it runs now.
        if (isActiveState(await domainState(vm.domain, tool))) {
          throw new DiskMismatch(`VM '${vm.domain}' started while its backup was being prepared`);
        }
      }
      prepared = true;
      return {
        files,
        template,
        state: state === 'paused' ? 'SUSPENDED' : active ? 'RUNNING' : 'POWEROFF',
        release,
      };
    } catch (error) {
      await release().catch(() => {});
      // The backup never happened: no chain may follow the checkpoint made for it.
      if (inc && created) {
        const sources = disks.map((d) => d.source);
        await deleteCheckpoint(vm.domain, inc.checkpoint, sources, { uri: this.uri }).catch(() => {});
      }
      throw error;
    }
  }

  /** `disk.<id>.<qcow2|raw>` (FULL) and `disk.<id>.inc<N>.qcow2`; any other `*.qcow2`/`*.raw` as a FULL. */
  describeArtifact(name: string): StoredArtifact | null {
    return describeFileArtifact(name);
  }

  flattenedName(diskId: number): string {
    return `disk.${diskId}.qcow2`;
  }

  restoredFileName(base: string): string {
    return `${base}.qcow2`;
  }

  /**
   * The FULL converted alone, or the increments rebased onto it (see {@link restoreChain}). An
   * increment's backing file (the live disk at backup time) is never opened: it is replaced by
   * the chain's previous file. A FULL with a backing file, or any file with an external data
   * file, is refused (UnsafeDiskImage) before any qemu-img call.
   */
  async restorePoint(
    files: readonly PointFile[],
    toPath: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<RestoredDisk> {
    const typed = files.map((file) => {
      const artifact = describeFileArtifact(file.name);
      if (!artifact) throw new ValidationError(`backup file "${file.name}" is neither .raw nor .qcow2`);
      return { path: file.path, format: artifact.format };
    });
    const [full, ...increments] = typed;
    if (!full) throw new ValidationError('a chain needs its FULL backup');
    await checkStoredImage(full.path, full.format, 'full');
    for (const file of increments) await checkStoredImage(file.path, file.format, 'increment');
    if (increments.length === 0) return this.restoreDisk(full.path, full.format, toPath, options);
    return restoreChain(typed, toPath, options);
  }

  /**
   * Restores a point of an incremental chain: `files` are the FULL first, then its increments in
   * order (each qcow2 holding only changed blocks). Each increment is rebased (metadata only)
   * onto the previous file, and the top is converted into a standalone qcow2 at `toPath`, checked
   * with `qemu-img check`. Refuses to overwrite `toPath`; the input files are left in place.
   */
  restoreChain(
    files: readonly { path: string; format: 'qcow2' | 'raw' }[],
    toPath: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<RestoredDisk> {
    return restoreChain(files, toPath, options);
  }

  /** An interrupted in-place swap is undone first (the VM's old files back), then the backup's leftovers. */
  async reconcile(
    workDir: string,
    domain?: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const putBack = await undoInPlace(workDir);
    return [...putBack, ...(await this.clean(workDir, domain, options))];
  }

  prepareInPlace(
    domain: string,
    diskIds: readonly number[],
    options: { workDir: string; signal?: AbortSignal },
  ): Promise<InPlaceRestore> {
    return prepareInPlace(domain, diskIds, options.workDir, { uri: this.uri, signal: options.signal });
  }

  /** SNAPSHOT overlays settled from the record first (see `snapshot-mode.ts`), then the folder. */
  private async clean(workDir: string, domain: string | undefined, options: { signal?: AbortSignal }) {
    const tool = { uri: this.uri, signal: options.signal };
    const done = await settleRecord(workDir, tool);
    return [...done, ...(await cleanWorkDir(workDir, domain, tool))];
  }

  /**
   * Turns a disk file restored from a datastore (`file`, stored in `format`) into a qcow2 disk
   * at `toPath` (moved when already qcow2, converted otherwise; the input file is consumed), and
   * checks it with `qemu-img check`. Refuses to overwrite an existing `toPath`. What
   * {@link restorePoint} does with a lone FULL.
   */
  async restoreDisk(
    file: string,
    format: 'qcow2' | 'raw',
    toPath: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<RestoredDisk> {
    if (await exists(toPath)) throw new Conflict(`Disk file ${toPath} already exists`);
    // Untrusted bytes from a datastore: no backing or data file, checked before qemu-img opens it.
    await checkStoredImage(file, format, 'full');
    await mkdir(dirname(toPath), { recursive: true });
    const info = await imageInfo(file, { format, signal: options.signal });
    if (info['backing-filename'])
      throw new DiskMismatch(`${file} has a backing file; restore its chain first`);
    return writeQcow2({ path: file, format }, toPath, info['virtual-size'], { ...options, move: true });
  }

  /** Checks the task's disks against the live domain and names the files to hand out. */
  private async checkDisks(
    domain: string,
    disks: readonly BackupDisk[],
    active: boolean,
    workDir: string,
    tool: ToolOptions,
    tops: ReadonlyMap<string, string>,
    liveXml: string,
  ): Promise<{ files: PreparedFile[]; exported: Set<string> }> {
    if (disks.length === 0) throw new ValidationError('A backup needs at least one disk');
    const live = parseDomainXml(liveXml);
    const files: PreparedFile[] = [];
    const exported = new Set<string>();
    for (const disk of disks) {
      const format = disk.format;
      if ((disk.driver ?? this.name) !== this.name || format === 'rbd') {
        throw new DiskMismatch(`Disk ${disk.id} (${disk.target}) of '${domain}' is not a file disk`);
      }
      const found = live.disks.find((d) => d.target === disk.target);
      if (found?.type !== 'file') {
        throw new DiskMismatch(`VM '${domain}' has no file disk ${disk.target}`);
      }
      // Under a SNAPSHOT increment the domain runs on the parent's tracking overlay of the disk.
      const top = tops.get(disk.target);
      const matches = top
        ? found.source === top && found.format === 'qcow2'
        : found.source === disk.source && found.format === format;
      if (!matches) {
        throw new DiskMismatch(
          `VM '${domain}' disk ${disk.target} is ${found.source} (${found.format}), not ${disk.source} (${format}); ` +
            'an overlay left by an interrupted backup is cleaned by reconcile',
        );
      }
    }
    // -U only for metadata of a disk a running QEMU holds open. All disks at once.
    const infos = await Promise.all(
      disks.map((d) => imageInfo(d.source, { format: d.format, shared: active, signal: tool.signal })),
    );
    for (const [i, disk] of disks.entries()) {
      const format = disk.format;
      const info = infos[i] as Awaited<ReturnType<typeof imageInfo>>;
      if (info['backing-filename']) {
        exported.add(disk.target);
        files.push({
          diskId: disk.id,
          name: `disk.${disk.id}.raw`,
          source: {
            kind: 'nbd',
            uri: nbdUri(lockSocketPath(workDir, disk.target)),
            size: info['virtual-size'],
          },
          format: 'raw',
          virtualSize: info['virtual-size'],
        });
        continue;
      }
      files.push({
        diskId: disk.id,
        name: `disk.${disk.id}.${format}`,
        source: { kind: 'file', path: disk.source },
        format,
        virtualSize: info['virtual-size'],
      });
    }
    return { files, exported };
  }

  /** Freeze, one atomic external snapshot of the selected disks, thaw (also on failure). */
  private async snapshot(
    domain: string,
    disks: readonly BackupDisk[],
    state: string,
    options: PrepareOptions,
    tool: ToolOptions,
    liveXml?: string,
  ): Promise<void> {
    const live = parseDomainXml(liveXml ?? (await domainXml(domain, tool)));
    const specs = live.disks.map((d) => {
      const selected = disks.some((s) => s.target === d.target);
      // virsh splits --diskspec on commas; a literal comma is written twice.
      const file = overlayPath(options.workDir, d.target).replaceAll(',', ',,');
      return [
        '--diskspec',
        selected ? `${d.target},snapshot=external,file=${file}` : `${d.target},snapshot=no`,
      ];
    });
    const thaw = await freeze(domain, options.freeze, state, tool);
    try {
      await virsh(
        ['snapshot-create-as', domain, '--disk-only', '--atomic', '--no-metadata', ...specs.flat()],
        tool,
      );
    } catch (error) {
      if (error instanceof Cancelled) throw error;
      const detail = error instanceof ExecError ? error.stderrTail : (error as Error).message;
      throw new DiskSnapshotFailed(`Snapshot of VM '${domain}' failed: ${detail}`, { cause: error });
    } finally {
      await thaw();
    }
  }

  /**
   * A qemu-nbd on the file, until release: holds QEMU's image lock so a stopped domain cannot
   * start, and serves the disk (backing chain included) on `lock-<target>.sock`.
   */
  private async holdLock(
    disk: BackupDisk,
    workDir: string,
  ): Promise<{ abort: AbortController; done: Promise<unknown> }> {
    const abort = new AbortController();
    const pidFile = lockPidPath(workDir, disk.target);
    // A read-only qcow2 open unshares write (QEMU then cannot open the file to run); a read-only
    // raw open does not, so raw is opened read-write (nothing writes: no client ever connects,
    // and a qcow2 opened read-write could rewrite its header and bitmaps, hence -r for it).
    const mode = disk.format === 'qcow2' ? ['-r'] : [];
    const args = ['-t', ...mode, '-f', disk.format, '-k', lockSocketPath(workDir, disk.target)];
    let failure: unknown;
    const done = run(
      { file: 'qemu-nbd', args: [...args, `--pid-file=${pidFile}`, disk.source] },
      { signal: abort.signal },
    ).catch((error: unknown) => {
      failure = error;
    });
    for (let i = 0; i < 100 && failure === undefined && !(await exists(pidFile)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (failure !== undefined || !(await exists(pidFile))) {
      abort.abort();
      await done;
      const detail = failure instanceof ExecError ? failure.stderrTail : 'qemu-nbd did not start';
      throw new DiskMismatch(`Cannot lock ${disk.source} of a stopped VM (is it running?): ${detail}`, {
        cause: failure,
      });
    }
    return { abort, done };
  }
}

const ARTIFACT = /^disk\.(\d+)\.(?:inc(\d+)\.)?(qcow2|raw)$/;

/** What a file driver's stored file holds, from its name (null: not a qcow2 or raw file). */
export function describeFileArtifact(name: string): (StoredArtifact & { format: 'qcow2' | 'raw' }) | null {
  const match = ARTIFACT.exec(name);
  if (match) {
    const format = match[3] as 'qcow2' | 'raw';
    // Increments are qcow2 files holding only changed blocks.
    if (match[2] !== undefined && format !== 'qcow2') return null;
    return { diskId: Number(match[1]), format, increment: match[2] === undefined ? null : Number(match[2]) };
  }
  if (name.endsWith('.qcow2')) return { diskId: null, format: 'qcow2', increment: null };
  if (name.endsWith('.raw')) return { diskId: null, format: 'raw', increment: null };
  return null;
}

/** libnbd URI of a qemu-nbd export (default export name) on a Unix socket. */
function nbdUri(socket: string): string {
  return `nbd+unix:///?socket=${encodeURI(socket)}`;
}

/** Runs `fn` once when it succeeds; after a failure the next call tries again. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let promise: Promise<void> | undefined;
  return () => {
    promise ??= fn().catch((error: unknown) => {
      promise = undefined;
      throw error;
    });
    return promise;
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
