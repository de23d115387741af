/**
 * The three ways a backup of a chain differs from a plain FULL one (see `cbt.ts` for why each
 * mechanism was chosen): a running VM's chain start (pull mode + checkpoint), a running VM's
 * increment (push mode from the parent checkpoint), a stopped VM's increment (qemu-storage-daemon).
 * A stopped VM's chain start is the plain FULL plus `createOfflineCheckpoint`.
 */
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec.ts';
import {
  assertParent,
  backupBegin,
  checkpointXml,
  createOfflineCheckpoint,
  deleteCheckpoint,
  listCheckpoints,
  redefineCheckpoint,
  waitBackupJob,
} from './cbt.ts';
import { parseDomainXml } from './domain-xml.ts';
import type { BackupDisk, FreezeMode, PreparedFile } from './driver.ts';
import { DiskMismatch } from './errors.ts';
import { freeze } from './freeze.ts';
import { offlineIncrement } from './offline-increment.ts';
import { domainState, domainXml, isActiveState, type ToolOptions, virsh } from './tools.ts';
import { PULL_DIR } from './work-dir.ts';

export interface ChainContext {
  domain: string;
  disks: readonly BackupDisk[];
  /** What `checkDisks` found: the guest-visible size of each disk, by disk id. */
  sizes: ReadonlyMap<number, number>;
  workDir: string;
  checkpoint: string;
  freeze: FreezeMode;
  /** libvirt's word for the state (`running`, `paused`, `shut off`). */
  state: string;
  tool: ToolOptions;
}

/**
 * The chain part of `prepareBackup` (see `PrepareOptions.increment`): returns the files to hand
 * out. `hooks.pulling` is told before a pull job starts (release must end it); `hooks.lock` locks
 * the disks of a stopped VM as a plain FULL does.
 */
export async function prepareChain(
  ctx: ChainContext,
  inc: { checkpoint: string; parent: string | null; index?: number },
  hooks: { pulling(): void; lock(): Promise<void> },
): Promise<PreparedFile[] | undefined> {
  const active = isActiveState(ctx.state);
  const index = inc.index ?? Number(/(\d+)$/.exec(inc.checkpoint)?.[1] ?? 1);
  await pruneCheckpoints(ctx, inc.parent);
  if (inc.parent) {
    return active ? incrementRunning(ctx, inc.parent, index) : incrementOffline(ctx, inc.parent, index);
  }
  if (active) {
    hooks.pulling();
    return startChainRunning(ctx);
  }
  const all = await allTargets(ctx);
  await createOfflineCheckpoint(ctx.domain, ctx.disks, all, inc.checkpoint, null, ctx.workDir, ctx.tool);
  await hooks.lock();
  // It may have started between our look and the lock: then the lock failed, or it runs now.
  if (isActiveState(await domainState(ctx.domain, ctx.tool))) {
    throw new DiskMismatch(`VM '${ctx.domain}' started while its backup was being prepared`);
  }
  return undefined;
}

/** Prefix of the checkpoints Lifeboat makes (others, an operator's own, are left alone). */
export const OUR_CHECKPOINTS = 'lifeboat-';

/**
 * Deletes every checkpoint of ours but `keep`: a chain follows only its last one, and each kept
 * checkpoint is a bitmap QEMU updates on every guest write. One named like the new checkpoint
 * can only be the leftover of a failed attempt of this backup.
 */
export async function pruneCheckpoints(ctx: ChainContext, keep: string | null): Promise<void> {
  const sources = ctx.disks.map((d) => d.source);
  for (const name of await listCheckpoints(ctx.domain, ctx.tool)) {
    if (name.startsWith(OUR_CHECKPOINTS) && name !== keep) {
      await deleteCheckpoint(ctx.domain, name, sources, ctx.tool);
    }
  }
}

/**
 * Running VM, chain start for a datastore that reads files only (no NBD): the checkpoint is
 * created first and the caller takes its usual snapshot right after. Guest writes in between
 * are in the FULL and also marked in the bitmap, so the next increment carries them again:
 * a few blocks too many, never one missing.
 */
export async function checkpointBeforeSnapshot(ctx: ChainContext): Promise<void> {
  await pruneCheckpoints(ctx, null);
  const all = await allTargets(ctx);
  const file = join(ctx.workDir, 'checkpoint.xml');
  await writeFile(
    file,
    checkpointXml(
      ctx.checkpoint,
      ctx.disks.map((d) => d.target),
      all,
    ),
    { mode: 0o600 },
  );
  await virsh(['checkpoint-create', ctx.domain, file], ctx.tool);
}

/** File name of increment `index` of a disk. */
export const incrementName = (diskId: number, index: number) => `disk.${diskId}.inc${index}.qcow2`;

/**
 * Running VM, chain start: a pull-mode backup job with the new checkpoint; each disk is served
 * raw on the job's NBD socket until `abortBackupJob` (release).
 */
export async function startChainRunning(ctx: ChainContext): Promise<PreparedFile[]> {
  const pull = join(ctx.workDir, PULL_DIR);
  await mkdir(pull, { recursive: true, mode: 0o700 });
  // QEMU (libvirt-qemu) creates the socket and the scratch files there.
  const owner = await qemuUser();
  if (owner) await chown(pull, owner.uid, owner.gid);
  const socket = join(pull, 'nbd.sock');
  const all = await allTargets(ctx);
  const selected = ctx.disks.map((d) => d.target);
  const disks = all.map((t) =>
    selected.includes(t)
      ? `<disk name='${t}' backup='yes' type='file'><scratch file='${xmlEscape(join(pull, `scratch-${t}.qcow2`))}'/></disk>`
      : `<disk name='${t}' backup='no'/>`,
  );
  const backup = `<domainbackup mode='pull'><server transport='unix' socket='${xmlEscape(socket)}'/><disks>${disks.join('')}</disks></domainbackup>`;
  await frozen(ctx, () =>
    backupBegin(ctx.domain, ctx.workDir, backup, checkpointXml(ctx.checkpoint, selected, all), ctx.tool),
  );
  return ctx.disks.map((d) => {
    const size = ctx.sizes.get(d.id) ?? 0;
    return {
      diskId: d.id,
      name: `disk.${d.id}.raw`,
      source: { kind: 'nbd', uri: `nbd+unix:///${d.target}?socket=${encodeURI(socket)}`, size },
      format: 'raw',
      virtualSize: size,
    };
  });
}

/** Running VM, increment: push-mode backup of the clusters changed since `parent`. */
export async function incrementRunning(
  ctx: ChainContext,
  parent: string,
  index: number,
): Promise<PreparedFile[]> {
  await assertParent(ctx.domain, parent, ctx.disks, true, ctx.tool);
  const all = await allTargets(ctx);
  const selected = ctx.disks.map((d) => d.target);
  const outputs = new Map(ctx.disks.map((d) => [d.target, join(ctx.workDir, incrementName(d.id, index))]));
  const disks = all.map((t) => {
    const output = outputs.get(t);
    return output
      ? `<disk name='${t}' backup='yes' type='file'><target file='${xmlEscape(output)}'/><driver type='qcow2'/></disk>`
      : `<disk name='${t}' backup='no'/>`;
  });
  const backup = `<domainbackup mode='push'><incremental>${xmlEscape(parent)}</incremental><disks>${disks.join('')}</disks></domainbackup>`;
  await frozen(ctx, () =>
    backupBegin(ctx.domain, ctx.workDir, backup, checkpointXml(ctx.checkpoint, selected, all), ctx.tool),
  );
  await waitBackupJob(ctx.domain, ctx.tool);
  // The file names the live disk as its backing file: a restore rebases it onto the chain.
  for (const output of outputs.values()) {
    await run({ file: 'qemu-img', args: ['rebase', '-u', '-f', 'qcow2', '-b', '', output] }, ctx.tool);
  }
  return incrementFiles(ctx, outputs);
}

/** Stopped VM, increment: see `offline-increment.ts`; then the checkpoint is recorded in libvirt. */
export async function incrementOffline(
  ctx: ChainContext,
  parent: string,
  index: number,
): Promise<PreparedFile[]> {
  await assertParent(ctx.domain, parent, ctx.disks, false, ctx.tool);
  const outputs = new Map(ctx.disks.map((d) => [d.target, join(ctx.workDir, incrementName(d.id, index))]));
  await offlineIncrement(
    ctx.disks.map((d) => ({
      target: d.target,
      source: d.source,
      output: outputs.get(d.target) as string,
      virtualSize: ctx.sizes.get(d.id) ?? 0,
    })),
    parent,
    ctx.checkpoint,
    ctx.workDir,
    ctx.tool.signal,
  );
  await redefineCheckpoint(
    ctx.domain,
    ctx.disks,
    await allTargets(ctx),
    ctx.checkpoint,
    parent,
    ctx.workDir,
    ctx.tool,
  );
  return incrementFiles(ctx, outputs);
}

function incrementFiles(ctx: ChainContext, outputs: Map<string, string>): PreparedFile[] {
  return ctx.disks.map((d) => {
    const path = outputs.get(d.target) as string;
    return {
      diskId: d.id,
      name: path.slice(path.lastIndexOf('/') + 1),
      source: { kind: 'file', path },
      format: 'qcow2',
      virtualSize: ctx.sizes.get(d.id) ?? 0,
    };
  });
}

/** Every disk target of the domain (those not backed up are named with backup='no'). */
async function allTargets(ctx: ChainContext): Promise<string[]> {
  return parseDomainXml(await domainXml(ctx.domain, ctx.tool)).disks.map((d) => d.target);
}

async function frozen(ctx: ChainContext, fn: () => Promise<void>): Promise<void> {
  const thaw = await freeze(ctx.domain, ctx.freeze, ctx.state, ctx.tool);
  try {
    await fn();
  } finally {
    await thaw();
  }
}

/** uid/gid QEMU runs as (Debian: libvirt-qemu); undefined when there is no such user. */
async function qemuUser(): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const uid = Number((await run({ file: 'id', args: ['-u', 'libvirt-qemu'] })).stdout.trim());
    const gid = Number((await run({ file: 'id', args: ['-g', 'libvirt-qemu'] })).stdout.trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}
