/**
 * `restore`: the datastore driver writes the backup's disk files (for a point of an increment
 * chain: the FULL's and each increment's up to that point) into the task's work folder, the disk
 * driver turns each disk into `<target>/<name>-disk-<id>.qcow2` (converted from raw when it was
 * stored raw, a chain's increments rebased onto the FULL, checked with `qemu-img check`), and
 * the cleaned template the task carries is written as `<target>/<name>.xml`, its disks pointed
 * at the restored files.
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { RestoreResult, RestoreTask } from '#core/contracts/tasks.ts';
import { Conflict, ValidationError } from '#core/errors.ts';
import { parseDomainXml } from '#drivers/disk/domain-xml.ts';
import type { RestoredDisk } from '#drivers/disk/driver.ts';
import { pointDiskAt } from '#drivers/disk/work-dir.ts';
import type { TaskContext } from './context.ts';

/** Restored disk file of disk `id` of the VM called `name`. */
export function restoredDiskPath(target: string, name: string, id: number): string {
  return join(target, `${name}-disk-${id}.qcow2`);
}

/** Stored format of a backup file, from its name (`disk.0.raw`, `disk.1.qcow2`). */
export function storedFormat(file: string): 'qcow2' | 'raw' {
  if (file.endsWith('.qcow2')) return 'qcow2';
  if (file.endsWith('.raw')) return 'raw';
  throw new ValidationError(`backup file "${file}" is neither .raw nor .qcow2`);
}

/**
 * The template with each restored disk's `<source>` pointing at its new file. Disk ids are the
 * positions of the backed-up-able disks (file disks in qcow2 or raw) in the XML, as the
 * inventory numbers them; a disk id the template does not have is left alone.
 */
export function pointTemplateAtDisks(template: string, paths: ReadonlyMap<number, string>): string {
  const disks = parseDomainXml(template).disks.filter(
    (d) => d.device === 'disk' && d.source && (d.format === 'qcow2' || d.format === 'raw'),
  );
  let xml = template;
  for (const [id, path] of paths) {
    const disk = disks[id];
    if (disk) xml = pointDiskAt(xml, disk.target, path, 'qcow2');
  }
  return xml;
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The folder a restore writes to: the task's absolute path, or a relative one under `<state>/restores`. */
export function restoreFolder(target: string, stateDir: string): string {
  if (target.split('/').includes('..'))
    throw new ValidationError(`restore folder "${target}" must not contain ..`);
  return isAbsolute(target) ? target : join(stateDir, 'restores', target);
}

export async function runRestore(task: RestoreTask, ctx: TaskContext): Promise<RestoreResult> {
  const started = Date.now();
  if (!SAFE_NAME.test(task.name))
    throw new ValidationError(`restore name "${task.name}" is not a safe file name`);
  const store = ctx.drivers.datastore(task.datastore.driver);
  const disk = ctx.drivers.disk('qcow2');
  const target = await ctx.target(task.datastore);
  const folder = restoreFolder(task.target, ctx.stateDir);
  const templatePath = task.template === null ? null : join(folder, `${task.name}.xml`);
  const paths = new Map(task.disks.map((d) => [d.id, restoredDiskPath(folder, task.name, d.id)]));
  // Refuse before downloading anything: a restore never overwrites a file.
  for (const path of [...paths.values(), ...(templatePath ? [templatePath] : [])]) {
    if (await exists(path)) throw new Conflict(`${path} already exists`);
  }

  ctx.progress.phase('downloading');
  // The FULL first, then each increment of the chain up to the point restored, each in its own folder.
  const backups = [{ backupId: task.backupId, disks: task.disks }, ...task.chain];
  const downloaded: Map<number, string>[] = [];
  for (const [index, backup] of backups.entries()) {
    const toDir = join(ctx.workDir, 'files', String(index));
    await mkdir(toDir, { recursive: true, mode: 0o700 });
    const files = await store.restore(
      target,
      { vmId: task.vmId, backupId: backup.backupId, files: backup.disks.map((d) => d.file), toDir },
      { signal: ctx.signal, onProgress: (done, total) => ctx.progress.bytes(done, total) },
    );
    const byName = new Map(files.map((f) => [f.name, f.path]));
    downloaded.push(
      new Map(
        backup.disks.map((d) => {
          const path = byName.get(d.file);
          if (!path)
            throw new ValidationError(`the datastore did not restore ${d.file} of ${backup.backupId}`);
          return [d.id, path];
        }),
      ),
    );
  }

  ctx.progress.phase('converting');
  await mkdir(folder, { recursive: true });
  const restored: RestoreResult['disks'] = [];
  for (const entry of task.disks) {
    const toPath = paths.get(entry.id) as string;
    const full = downloaded[0]?.get(entry.id) as string;
    let out: RestoredDisk;
    if (task.chain.length === 0) {
      out = await disk.restoreDisk(full, storedFormat(entry.file), toPath, { signal: ctx.signal });
    } else {
      if (!disk.restoreChain)
        throw new ValidationError(`the ${disk.name} disk driver cannot restore increments`);
      const files = [{ path: full, format: storedFormat(entry.file) }];
      for (const [index, backup] of task.chain.entries()) {
        const file = backup.disks.find((d) => d.id === entry.id);
        const path = downloaded[index + 1]?.get(entry.id);
        if (!file || !path)
          throw new ValidationError(`increment ${backup.backupId} has no file for disk ${entry.id}`);
        files.push({ path, format: storedFormat(file.file) });
      }
      out = await disk.restoreChain(files, toPath, { signal: ctx.signal });
    }
    restored.push({ id: entry.id, path: out.path, size: out.size });
  }
  if (task.template !== null && templatePath) {
    const xml = pointTemplateAtDisks(task.template, paths);
    const partial = `${templatePath}.partial`;
    await writeFile(partial, xml, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
      await rm(partial, { force: true });
      await writeFile(partial, xml, { mode: 0o600, flag: 'wx' });
    });
    await rename(partial, templatePath);
  }
  return { disks: restored, templatePath, durationMs: Date.now() - started };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
