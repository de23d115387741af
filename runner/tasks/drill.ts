/**
 * `drill`: proves an image restores. Every stored point of its chain is downloaded into this
 * task's work folder (under the runner's state folder: nothing of the message names a path) and
 * each file's sha256 is checked against the one recorded at backup time; then, from every point
 * (or the latest only), the disks are written (`DiskDriver.restorePoint`), the VM defined under
 * `lifeboat-drill-<drillId>` (a name built here, never taken from the message) from the stored
 * template cleaned again here with every NIC removed (NO_NIC) and rebuilt from the allow-list,
 * started, seen running, destroyed and undefined. Whatever happens, the domain is undefined and
 * every file removed (the executor removes the work folder too; a runner killed meanwhile
 * leaves both to its start-up reconcile).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DrillResult, DrillTask } from '#core/contracts/tasks.ts';
import { checkDomainName } from '#core/domain-name.ts';
import { bootedPoints, drillDomainName, drillTemplate, sumMismatch } from '#core/drill.ts';
import { BackupVerifyFailed } from '#drivers/datastore/errors.ts';
import type { DiskDriver, PointFile } from '#drivers/disk/driver.ts';
import { domainState } from '#drivers/disk/tools.ts';
import { RESTORE_FOLDER_MODE } from '../confine.ts';
import { DrillFailed } from '../errors.ts';
import type { TaskContext } from './context.ts';
import { assertNoDomain, defineDomain, undefineDomain } from './define-domain.ts';
import { downloadPoints, mergePoints, pointDriver } from './points.ts';
import { pointTemplateAtDisks, restoredDiskPath } from './restore.ts';

/** How long a drill VM may take to reach running. */
const RUNNING_WITHIN_MS = 30_000;

async function sha256File(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function runDrill(task: DrillTask, ctx: TaskContext): Promise<DrillResult> {
  const started = Date.now();
  const name = checkDomainName(drillDomainName(task.drillId), 'drill domain');
  const tool = { uri: ctx.libvirtUri, signal: ctx.signal };
  // First: the datastore's attributes are re-validated here, before any process runs.
  const store = ctx.drivers.datastore(task.datastore.driver);
  const target = await ctx.target(task.datastore);
  await assertNoDomain(name, tool);
  // QEMU (libvirt-qemu) must reach the restored disks: the work folder and its vm folder 0711.
  await mkdir(ctx.workDir, { recursive: true, mode: RESTORE_FOLDER_MODE });
  await chmod(ctx.workDir, RESTORE_FOLDER_MODE);
  const vmDir = join(ctx.workDir, 'vm');
  const filesDir = join(ctx.workDir, 'files');
  const copiesDir = join(ctx.workDir, 'copies');
  try {
    ctx.progress.phase('downloading');
    const downloaded = await downloadPoints(store, target, task.vmId, task.points, filesDir, ctx);
    ctx.progress.phase('checking');
    let bytes = 0;
    for (const [index, point] of task.points.entries()) {
      for (const disk of point.disks) {
        const file = downloaded[index]?.get(disk.id) as PointFile;
        bytes += (await stat(file.path)).size;
        const problem = sumMismatch(disk, point.backupId, await sha256File(file.path, ctx.signal));
        if (problem) throw new BackupVerifyFailed(`datastore ${task.datastore.id}: ${problem}`);
      }
    }
    const drivers = new Map(
      (task.points[0] as DrillTask['points'][number]).disks.map((d) => [
        d.id,
        pointDriver(ctx.drivers.disks(), task.points, d.id),
      ]),
    );
    let disks: DrillResult['disks'] = [];
    const booted = bootedPoints(task.points.length, task.latestOnly);
    for (const index of booted) {
      // restorePoint may consume its inputs: an earlier point works on copies, the last on the files.
      const last = index === task.points.length - 1;
      const inputs = last ? downloaded : await copyPoints(downloaded.slice(0, index + 1), copiesDir);
      disks = await bootPoint(task, name, index, inputs, drivers, vmDir, ctx);
      await rm(copiesDir, { recursive: true, force: true });
    }
    return { points: booted.length, bytes, disks, durationMs: Date.now() - started };
  } finally {
    // Whatever happened: no domain, no file (the executor removes the work folder as well).
    await undefineDomain(name, { uri: ctx.libvirtUri });
    for (const dir of [vmDir, copiesDir, filesDir]) await rm(dir, { recursive: true, force: true });
  }
}

/** Copies of the downloaded files of `points` under `dir` (same names, one folder per point). */
async function copyPoints(
  points: readonly Map<number, PointFile>[],
  dir: string,
): Promise<Map<number, PointFile>[]> {
  const copies: Map<number, PointFile>[] = [];
  for (const [index, point] of points.entries()) {
    const to = join(dir, String(index));
    await mkdir(to, { recursive: true, mode: 0o700 });
    const copy = new Map<number, PointFile>();
    for (const [id, file] of point) {
      const path = join(to, file.name);
      await copyFile(file.path, path);
      copy.set(id, { ...file, path });
    }
    copies.push(copy);
  }
  return copies;
}

/** Restores point `index`'s disks, defines and starts the VM, sees it running, removes both. */
async function bootPoint(
  task: DrillTask,
  name: string,
  index: number,
  downloaded: readonly Map<number, PointFile>[],
  drivers: ReadonlyMap<number, DiskDriver>,
  vmDir: string,
  ctx: TaskContext,
): Promise<DrillResult['disks']> {
  const tool = { uri: ctx.libvirtUri, signal: ctx.signal };
  ctx.progress.phase(`restoring point ${index}`);
  await mkdir(vmDir, { recursive: true, mode: RESTORE_FOLDER_MODE });
  await chmod(vmDir, RESTORE_FOLDER_MODE);
  const paths = new Map<number, string>();
  const disks: DrillResult['disks'] = [];
  try {
    for (const [id, driver] of drivers) {
      const path = restoredDiskPath(driver, vmDir, name, id);
      paths.set(id, path);
      const out = await mergePoints(driver, downloaded, id, path, ctx.signal);
      disks.push({ id, size: out.size });
    }
    // NO_NIC and the runner's own name, whatever the message's template says; then the allow-list.
    const { xml } = pointTemplateAtDisks(drillTemplate(task.template, task.drillId), paths);
    ctx.progress.phase(`starting point ${index}`);
    await defineDomain(
      xml,
      {
        name,
        start: true,
        emulatorCpus: task.emulatorCpus,
        workDir: ctx.workDir,
        diskFiles: [...paths.values()],
      },
      tool,
    );
    await waitRunning(name, index, ctx);
    return disks;
  } finally {
    await undefineDomain(name, { uri: ctx.libvirtUri });
    for (const path of paths.values()) await rm(path, { force: true });
  }
}

/** Polls libvirt until the domain runs; DrillFailed naming its state when it does not in time. */
async function waitRunning(name: string, index: number, ctx: TaskContext): Promise<void> {
  const end = Date.now() + RUNNING_WITHIN_MS;
  let state: string | null = null;
  for (;;) {
    state = await domainState(name, { uri: ctx.libvirtUri, signal: ctx.signal });
    if (state === 'running') return;
    if (Date.now() >= end) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new DrillFailed(
    `the VM restored from point ${index} did not reach running (state: ${state ?? 'gone'})`,
  );
}
