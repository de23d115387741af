/**
 * INCREMENT_MODE=SNAPSHOT for file disks: external "tracking overlays" rotated per backup.
 *
 * A chain start puts each disk on a persistent overlay beside it,
 * `<disk file>.<checkpoint>.qcow2` (outside the work folder: the VM keeps writing into it after
 * the backup, which is the change tracking), and hands out the now stable base as the FULL.
 * An increment from parent P requires the disk's chain to be exactly `base <- P's overlay`, puts
 * a new overlay on top, and hands out P's overlay: it holds exactly the guest writes since point
 * P. Its `release()` commits P's overlay into the base (non-active commit) and deletes it, so the
 * chain is again `base <- newest overlay`. A stopped VM gets the same, done with qemu-img and a
 * redefinition of the persistent domain.
 *
 * The work folder's record says which overlay this backup creates and whether the backup was
 * released; {@link settleRecord} (release and reconcile alike) either finishes the release or,
 * for a backup that never completed, commits the new overlay back into the one under it, so the
 * VM is back where it was with every guest write kept. An overlay the domain uses is never
 * deleted before its content is committed.
 */
import { rm } from 'node:fs/promises';
import { Cancelled, ExecError, run } from '../exec.ts';
import { deleteCheckpoint, listCheckpoints } from './cbt.ts';
import { parseDomainXml } from './domain-xml.ts';
import type { BackupDisk, FreezeMode, PreparedFile } from './driver.ts';
import { ChainBroken, DiskMismatch, DiskSnapshotFailed } from './errors.ts';
import { freeze } from './freeze.ts';
import { domainState, domainXml, isActiveState, isPersistent, type ToolOptions, virsh } from './tools.ts';
import {
  abortLeftJob,
  commitTopDown,
  currentChain,
  diskSources,
  exists,
  inUse,
  type KnownDomain,
  pointPersistentAt,
  trackedBaseOf,
  trackingPath,
} from './tracking-overlay.ts';
import { readRecord, type WorkRecord, writeRecord } from './work-dir.ts';

/**
 * Before any backup of `disks`: a SNAPSHOT increment from `parent` requires each disk to run on
 * exactly `base <- parent's overlay` (else ChainBroken, nothing changed) and returns the accepted
 * tops; any other backup first commits our tracking overlays back into their bases (a FULL of the
 * overlay alone would be a wrong backup). `known`: the domain's state and live XML just read.
 */
export async function settleForBackup(
  domain: string,
  disks: readonly Pick<BackupDisk, 'target' | 'source'>[],
  parent: string | null | undefined,
  tool: ToolOptions,
  known?: KnownDomain,
): Promise<{ tops: Map<string, string>; done: string[] }> {
  const tops = new Map<string, string>();
  const done: string[] = [];
  if (parent) {
    for (const disk of disks) {
      const expected = trackingPath(disk.source, parent);
      const { chain } = await currentChain(domain, disk.target, tool, known);
      if (chain[0] !== expected || chain[1] !== disk.source) {
        throw new ChainBroken(
          `Disk ${disk.target} of '${domain}' runs on ${chain.join(' <- ') || 'nothing'}, ` +
            `not on ${expected} directly over ${disk.source} (checkpoint '${parent}')`,
        );
      }
      tops.set(disk.target, expected);
    }
    return { tops, done };
  }
  for (const disk of disks) {
    // A crash mid-release can leave two overlays: commit down until the base is the top.
    for (let i = 0; i < 8; i++) {
      // `known` holds only until something is committed: then the domain is read again.
      const top = (await currentChain(domain, disk.target, tool, done.length ? undefined : known)).chain[0];
      if (!top || top === disk.source || trackedBaseOf(top)?.base !== disk.source) break;
      done.push(...(await commitTopDown(domain, disk.target, top, tool)));
    }
  }
  return { tops, done };
}

/**
 * Puts every disk of the domain whose base file is one of `bases` back on that file, committing
 * our tracking overlays into it (an in-place restore must do this before it replaces the base
 * files: the overlays hold the newest writes, and would sit over foreign content). Lines say what
 * was done; none when no disk runs on a tracking overlay.
 */
export async function commitTrackingOverlays(
  domain: string,
  bases: readonly string[],
  tool: ToolOptions = {},
): Promise<string[]> {
  const xml = parseDomainXml(await domainXml(domain, tool));
  const disks = xml.disks.flatMap((d) => {
    const base = d.source ? trackedBaseOf(d.source)?.base : undefined;
    return base && bases.includes(base) ? [{ target: d.target, source: base }] : [];
  });
  return (await settleForBackup(domain, disks, undefined, tool)).done;
}

export interface SnapshotContext {
  domain: string;
  disks: readonly BackupDisk[];
  sizes: ReadonlyMap<number, number>;
  state: string;
  freeze: FreezeMode;
  checkpoint: string;
  parent: string | null;
  index: number;
  tool: ToolOptions;
}

/**
 * Puts each disk on its new tracking overlay; returns the increment files (P's overlays), or
 * undefined for a chain start (the caller hands out the bases as a plain FULL does).
 */
export async function prepareSnapshot(ctx: SnapshotContext): Promise<PreparedFile[] | undefined> {
  const { domain, tool } = ctx;
  if (ctx.parent === null) {
    // Checkpoint bitmaps (CBT) miss writes made into overlays: no CBT chain may follow them.
    const sources = ctx.disks.map((d) => d.source);
    for (const name of await listCheckpoints(domain, tool)) {
      if (name.startsWith('lifeboat-')) await deleteCheckpoint(domain, name, sources, tool);
    }
  }
  for (const disk of ctx.disks) {
    const overlay = trackingPath(disk.source, ctx.checkpoint);
    if (await exists(overlay)) {
      if (await inUse(domain, overlay, tool)) throw new DiskMismatch(`${overlay} is in use by '${domain}'`);
      await rm(overlay, { force: true }); // leftover of a failed attempt that nothing uses
    }
  }
  if (isActiveState(ctx.state)) await snapshotRunning(ctx);
  else await snapshotStopped(ctx);
  if (ctx.parent === null) return undefined;
  const parent = ctx.parent;
  return ctx.disks.map((d) => ({
    diskId: d.id,
    name: `disk.${d.id}.inc${ctx.index}.qcow2`,
    source: { kind: 'file', path: trackingPath(d.source, parent) },
    format: 'qcow2',
    virtualSize: ctx.sizes.get(d.id) ?? 0,
  }));
}

async function snapshotRunning(ctx: SnapshotContext): Promise<void> {
  const live = parseDomainXml(await domainXml(ctx.domain, ctx.tool));
  const specs = live.disks.flatMap((d) => {
    const disk = ctx.disks.find((s) => s.target === d.target);
    // virsh splits --diskspec on commas; a literal comma is written twice.
    const file = disk && trackingPath(disk.source, ctx.checkpoint).replaceAll(',', ',,');
    return ['--diskspec', file ? `${d.target},snapshot=external,file=${file}` : `${d.target},snapshot=no`];
  });
  const thaw = await freeze(ctx.domain, ctx.freeze, ctx.state, ctx.tool);
  try {
    await virsh(
      ['snapshot-create-as', ctx.domain, '--disk-only', '--atomic', '--no-metadata', ...specs],
      ctx.tool,
    );
  } catch (error) {
    if (error instanceof Cancelled) throw error;
    const detail = error instanceof ExecError ? error.stderrTail : (error as Error).message;
    throw new DiskSnapshotFailed(`Snapshot of VM '${ctx.domain}' failed: ${detail}`, { cause: error });
  } finally {
    await thaw();
  }
}

async function snapshotStopped(ctx: SnapshotContext): Promise<void> {
  const points = [];
  for (const disk of ctx.disks) {
    const overlay = trackingPath(disk.source, ctx.checkpoint);
    const under = ctx.parent ? trackingPath(disk.source, ctx.parent) : disk.source;
    const format = ctx.parent ? 'qcow2' : disk.format;
    await run(
      { file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', '-b', under, '-F', format, overlay] },
      ctx.tool,
    );
    points.push({ target: disk.target, path: overlay, format: 'qcow2' });
  }
  await pointPersistentAt(ctx.domain, points, ctx.tool);
  // Started between our look and the redefinition: it may be writing into what we hand out.
  if (isActiveState(await domainState(ctx.domain, ctx.tool))) {
    throw new DiskMismatch(`VM '${ctx.domain}' started while its backup was being prepared`);
  }
}

/** Marks the recorded SNAPSHOT backup of `workDir` as done: settling then keeps its new overlays. */
export async function markReleased(workDir: string): Promise<void> {
  const record = await readRecord(workDir);
  if (record?.snapshot && !record.snapshot.released) {
    await writeRecord(workDir, { ...record, snapshot: { ...record.snapshot, released: true } });
  }
}

/**
 * The SNAPSHOT part of release and reconcile, from the work folder's record: a released
 * increment commits the parent's overlay into the base and deletes it; a backup never released
 * (crash, failure) commits its new overlay back into the one under it. Lines say what was done.
 */
export async function settleRecord(workDir: string, tool: ToolOptions): Promise<string[]> {
  const record = await readRecord(workDir);
  const snapshot = record?.snapshot;
  if (!record || !snapshot || !record.checkpoint) return [];
  const done: string[] = [];
  if ((await domainState(record.domain, tool)) === null) return done; // overlays kept: nothing to commit into
  for (const disk of record.disks) {
    const overlay = trackingPath(disk.base, record.checkpoint);
    if (!snapshot.released) {
      done.push(...(await undoOverlay(record, disk, overlay, tool)));
    } else if (snapshot.parent) {
      done.push(...(await dropParent(record, disk, trackingPath(disk.base, snapshot.parent), overlay, tool)));
    }
  }
  return done;
}

type RecordDisk = WorkRecord['disks'][number];

async function undoOverlay(record: WorkRecord, disk: RecordDisk, overlay: string, tool: ToolOptions) {
  const done = await commitTopDown(record.domain, disk.target, overlay, tool);
  // Redefined while stopped but started before on the old top: the overlay never got a write.
  const inactive = (await isPersistent(record.domain, tool))
    ? diskSources(await domainXml(record.domain, { ...tool, inactive: true }), disk.target)
    : [];
  const { chain } = await currentChain(record.domain, disk.target, tool);
  if (inactive[0] === overlay && !chain.includes(overlay) && chain[0]) {
    const under = record.snapshot?.parent ? 'qcow2' : disk.format;
    await pointPersistentAt(record.domain, [{ target: disk.target, path: chain[0], format: under }], tool);
    done.push(`redefined ${record.domain} ${disk.target} on ${chain[0]}`);
  }
  if ((await exists(overlay)) && !(await inUse(record.domain, overlay, tool))) {
    await rm(overlay, { force: true });
    done.push(`removed ${overlay}`);
  }
  if (await exists(overlay)) {
    throw new DiskSnapshotFailed(
      `${overlay} is still used by '${record.domain}'; kept for another reconcile`,
    );
  }
  return done;
}

async function dropParent(
  record: WorkRecord,
  disk: RecordDisk,
  parent: string,
  overlay: string,
  tool: ToolOptions,
): Promise<string[]> {
  const done: string[] = [];
  const { active, chain } = await currentChain(record.domain, disk.target, tool);
  if (chain[0] === overlay && chain[1] === parent) {
    if (active) {
      done.push(...(await abortLeftJob(record.domain, disk.target, tool)));
      await virsh(
        ['blockcommit', record.domain, disk.target, '--base', disk.base, '--top', parent, '--wait'],
        tool,
      );
    } else {
      // Crash-safe order: once committed, reading through the parent or past it gives the same.
      await run({ file: 'qemu-img', args: ['commit', '-f', 'qcow2', parent] }, tool);
      await run(
        {
          file: 'qemu-img',
          args: ['rebase', '-u', '-f', 'qcow2', '-b', disk.base, '-F', disk.format, overlay],
        },
        tool,
      );
      await pointPersistentAt(record.domain, [{ target: disk.target, path: overlay, format: 'qcow2' }], tool);
    }
    done.push(`committed ${parent} into ${disk.base}`);
  }
  if ((await exists(parent)) && !(await inUse(record.domain, parent, tool))) {
    await rm(parent, { force: true });
    done.push(`removed ${parent}`);
  }
  return done;
}
