/**
 * `restore`: the datastore driver writes the backup's disk files (for a point of an increment
 * chain: the FULL's and each increment's up to that point) into the task's work folder, the disk
 * driver that wrote each disk's files (known by their stored names) turns it into
 * `<target>/<name>-disk-<id>.<ext>` (`DiskDriver.restorePoint`, a checked disk file), and
 * the cleaned template the task carries is written as `<target>/<name>.xml`, its disks pointed
 * at the restored files. With `define` the VM is then defined on this host (define-domain.ts);
 * `inPlace` writes over a shut-off VM's own disks instead (the disk driver's `prepareInPlace`). A restore that fails
 * removes what it wrote (and the domain it defined); it never overwrites a file it did not make.
 * The target folder is confined (`runner/confine.ts`): under the host's restore roots unless an
 * admin asked, never through a symlink; the files land 0600 by an exclusive link(), the folders
 * this creates are 0711 so QEMU reaches the disks.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PoolName, type RestoreResult, type RestoreTask } from '#core/contracts/tasks.ts';
import { checkDomainName } from '#core/domain-name.ts';
import { Forbidden, ValidationError } from '#core/errors.ts';
import { type AllowedTemplate, allowTemplate } from '#core/template-allow.ts';
import { pointDisks } from '#core/template-host.ts';
import type { DiskDriver, PointFile, PoolRestore, RestoredDisk } from '#drivers/disk/driver.ts';
import { virsh } from '#drivers/disk/tools.ts';
import {
  assertAbsent,
  commitFile,
  createFolders,
  type Place,
  partialName,
  RESTORE_FOLDER_MODE,
  resolveFolder,
  writeNewFile,
} from '../confine.ts';
import type { TaskContext } from './context.ts';
import { assertNoDomain, defineDomain, undefineDomain } from './define-domain.ts';
import { downloadPoints, mergePoints, pointDriver } from './points.ts';

/** Restored disk file of disk `id` of the VM called `name`, as the disk's driver names it. */
export function restoredDiskPath(disk: DiskDriver, target: string, name: string, id: number): string {
  return join(target, disk.restoredFileName(`${name}-disk-${id}`));
}

/** The disk driver of each disk of the restored point (the one that wrote its stored files). */
function restoreDrivers(task: RestoreTask, ctx: TaskContext): Map<number, DiskDriver> {
  const points = [{ disks: task.disks }, ...task.chain];
  return new Map(task.disks.map((d) => [d.id, pointDriver(ctx.drivers.disks(), points, d.id)]));
}

/**
 * The template with each restored disk's `<source>` pointing at its new file (core
 * `pointDisks`: disk ids as the inventory numbers them; disks not restored are left out, since
 * they still name the original VM's storage), then rebuilt from the allow-list of
 * core/template-allow.ts: the stored template is untrusted, and nothing in it may name a host
 * file, device, socket or program. `notes` say what was left out.
 */
export function pointTemplateAtDisks(template: string, paths: ReadonlyMap<number, string>): AllowedTemplate {
  return allowTemplate(pointDisks(template, paths), paths.values());
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The folder a restore writes to (`runner/confine.ts`): a relative target under the host's first
 * restore root, an absolute one under a root unless the task is not confined (an admin asked);
 * never through a symlink or a folder other users can change. Checked, not yet created.
 */
export function restoreFolder(
  task: Pick<RestoreTask, 'target' | 'confine'>,
  ctx: Pick<TaskContext, 'restoreRoots'>,
): Promise<Place> {
  return resolveFolder(task.target, { roots: ctx.restoreRoots, confined: task.confine });
}

export async function runRestore(task: RestoreTask, ctx: TaskContext): Promise<RestoreResult> {
  const started = Date.now();
  if (!SAFE_NAME.test(task.name))
    throw new ValidationError(`restore name "${task.name}" is not a safe file name`);
  if (task.inPlace) return restoreInPlace(task, task.inPlace, ctx, started);
  if (task.pool) return restoreIntoPool(task, task.pool, ctx, started);
  const place = await restoreFolder(task, ctx);
  const folder = place.path;
  const templatePath = task.template === null ? null : join(folder, `${task.name}.xml`);
  const drivers = restoreDrivers(task, ctx);
  const paths = new Map(
    task.disks.map((d) => [d.id, restoredDiskPath(drivers.get(d.id) as DiskDriver, folder, task.name, d.id)]),
  );
  // Refuse before downloading anything: a restore never overwrites a file or a domain.
  for (const path of [...paths.values(), ...(templatePath ? [templatePath] : [])]) {
    await assertAbsent(path, place.label);
  }
  if (task.define) {
    if (task.template === null) throw new ValidationError('cannot restore a VM from a single-disk backup');
    await assertNoDomain(task.name, { uri: ctx.libvirtUri, signal: ctx.signal });
  }

  // Only what this restore made is removed on failure: partials, and final names once linked.
  const created: string[] = [];
  let defined = false;
  try {
    const downloaded = await download(task, ctx);
    ctx.progress.phase('converting');
    await createFolders(place, RESTORE_FOLDER_MODE);
    const restored: RestoreResult['disks'] = [];
    for (const entry of task.disks) {
      const toPath = paths.get(entry.id) as string;
      // qemu-img writes a fresh name in the checked folder; only link() puts it in place.
      const partial = partialName(toPath);
      created.push(partial);
      const out = await restoreOne(drivers, entry, downloaded, partial, ctx);
      await commitFile(partial, toPath);
      created.push(toPath);
      restored.push({ id: entry.id, path: toPath, size: out.size });
    }
    let xml: string | null = null;
    const notes: string[] = [];
    if (task.template !== null && templatePath) {
      const allowed = pointTemplateAtDisks(task.template, paths);
      xml = allowed.xml;
      notes.push(...allowed.notes);
      await writeNewFile(templatePath, xml);
      created.push(templatePath);
    }
    const result: RestoreResult = {
      disks: restored,
      templatePath,
      domain: null,
      started: false,
      notes,
      durationMs: 0,
    };
    if (task.define && xml !== null) {
      ctx.progress.phase('defining');
      defined = true;
      const domain = await defineDomain(
        xml,
        {
          name: task.name,
          start: task.define.start,
          emulatorCpus: task.define.emulatorCpus,
          workDir: ctx.workDir,
          diskFiles: [...paths.values()],
        },
        { uri: ctx.libvirtUri, signal: ctx.signal },
      );
      Object.assign(result, {
        domain: domain.name,
        started: domain.started,
        notes: [...notes, ...domain.notes],
      });
    }
    return { ...result, durationMs: Date.now() - started };
  } catch (error) {
    if (defined) await undefineDomain(task.name, { uri: ctx.libvirtUri });
    for (const path of created) await rm(path, { force: true });
    throw error;
  }
}

/** Downloads the FULL, then each increment of the chain up to the point restored, each in its own folder. */
async function download(task: RestoreTask, ctx: TaskContext): Promise<Map<number, PointFile>[]> {
  ctx.progress.phase('downloading');
  const store = ctx.drivers.datastore(task.datastore.driver);
  const target = await ctx.target(task.datastore);
  const points = [{ backupId: task.backupId, disks: task.disks }, ...task.chain];
  return downloadPoints(store, target, task.vmId, points, join(ctx.workDir, 'files'), ctx);
}

/** One disk as a standalone disk file at `toPath`, written by the driver that stored it. */
function restoreOne(
  drivers: ReadonlyMap<number, DiskDriver>,
  entry: RestoreTask['disks'][number],
  downloaded: Map<number, PointFile>[],
  toPath: string,
  ctx: TaskContext,
): Promise<RestoredDisk> {
  return mergePoints(drivers.get(entry.id) as DiskDriver, downloaded, entry.id, toPath, ctx.signal);
}

/**
 * Restores each disk into the new image `<pool>/<name>-disk-<id>` (`DiskDriver.prepareToPool`):
 * rbd backups only, never over an existing image (each name is checked and found free before
 * anything is downloaded, again before it is written, and rbd refuses too), and only into a pool the host's own
 * configuration allows (`LIFEBOAT_RESTORE_POOLS`). A disk that fails leaves no image; images of
 * the disks done before it are kept and logged.
 */
async function restoreIntoPool(
  task: RestoreTask,
  pool: string,
  ctx: TaskContext,
  started: number,
): Promise<RestoreResult> {
  // The task is untrusted here too: a pool name that is not one is refused before any rbd call.
  const checked = PoolName.safeParse(pool);
  if (!checked.success) throw new ValidationError(`pool "${pool}" is not a Ceph pool name`);
  // The host's own allow-list, not the control plane's word: checked before any download or rbd call.
  if (!(ctx.restorePools ?? []).includes(pool))
    throw new Forbidden(
      `pool: this host does not allow restores into pool "${pool}" (LIFEBOAT_RESTORE_POOLS of its runner)`,
    );
  if (task.define || task.template !== null)
    throw new ValidationError('pool: a restore into a pool writes disk images only (no VM definition)');
  const drivers = restoreDrivers(task, ctx);
  // Each new image's name checked and found free before anything is downloaded.
  const into = new Map<number, PoolRestore>();
  for (const entry of task.disks) {
    const driver = drivers.get(entry.id) as DiskDriver;
    if (!driver.prepareToPool)
      throw new ValidationError(
        `pool: disk ${entry.id} is a ${driver.name} backup; only rbd disks restore into a pool`,
      );
    into.set(
      entry.id,
      await driver.prepareToPool(pool, `${task.name}-disk-${entry.id}`, { signal: ctx.signal }),
    );
  }
  const downloaded = await download(task, ctx);
  ctx.progress.phase('importing');
  const restored: RestoreResult['disks'] = [];
  try {
    for (const entry of task.disks) {
      const files = downloaded.flatMap((point) => {
        const file = point.get(entry.id);
        return file ? [file] : [];
      });
      const out = await (into.get(entry.id) as PoolRestore).write(files, { signal: ctx.signal });
      restored.push({ id: entry.id, path: out.image, size: out.size });
    }
  } catch (error) {
    if (restored.length > 0)
      ctx.log('warn', 'restore into a pool failed after some images were written; they are kept', {
        images: restored.map((d) => d.path),
      });
    throw error;
  }
  return {
    disks: restored,
    templatePath: null,
    domain: null,
    started: false,
    notes: [],
    durationMs: Date.now() - started,
  };
}

/**
 * Restores over the shut-off domain's own disks, through the disk driver that stored them
 * (`DiskDriver.prepareInPlace`): each disk staged beside its own, then all swapped in at once.
 */
async function restoreInPlace(
  task: RestoreTask,
  inPlace: NonNullable<RestoreTask['inPlace']>,
  ctx: TaskContext,
  started: number,
): Promise<RestoreResult> {
  const tool = { uri: ctx.libvirtUri, signal: ctx.signal };
  checkDomainName(inPlace.domain, 'in-place restore domain');
  const drivers = restoreDrivers(task, ctx);
  const kinds = [...new Set(drivers.values())];
  // One driver swaps every disk at once: all or none.
  if (kinds.length !== 1) {
    throw new ValidationError(
      `in-place restore: disks of several kinds (${kinds.map((d) => d.name).join(', ')}) in one restore`,
    );
  }
  const driver = kinds[0] as DiskDriver;
  // The disks written over are libvirt's, never the task's `inPlace.disks[].source`.
  const replace = await driver.prepareInPlace(
    inPlace.domain,
    task.disks.map((entry) => entry.id),
    { workDir: ctx.workDir, signal: ctx.signal },
  );
  const notes: string[] = [];
  for (const disk of replace.disks) {
    const named = inPlace.disks.find((d) => d.id === disk.id);
    if (named && (named.source !== disk.source || named.format !== disk.format)) {
      notes.push(
        `disk ${disk.id}: restored onto ${disk.source} (${disk.format}), the domain's file in libvirt; the task named ${named.source} (${named.format})`,
      );
      ctx.log('warn', 'in-place restore: the task names another file than libvirt; libvirt’s is restored', {
        domain: inPlace.domain,
        disk: disk.id,
        task: named.source,
        libvirt: disk.source,
      });
    }
  }
  try {
    const downloaded = await download(task, ctx);
    ctx.progress.phase('converting');
    const restored: RestoreResult['disks'] = [];
    for (const entry of task.disks) {
      const out = await replace.stage(entry.id, (scratch) =>
        restoreOne(drivers, entry, downloaded, scratch, ctx),
      );
      restored.push({ id: entry.id, path: out.path, size: out.size });
    }
    ctx.progress.phase('swapping');
    for (const line of await replace.commit()) ctx.log('info', line, { domain: inPlace.domain });
    let startedVm = false;
    if (inPlace.start) {
      ctx.progress.phase('starting');
      await virsh(['start', inPlace.domain], tool);
      startedVm = true;
    }
    return {
      disks: restored,
      templatePath: null,
      domain: inPlace.domain,
      started: startedVm,
      notes,
      durationMs: Date.now() - started,
    };
  } finally {
    await replace.discard();
  }
}
