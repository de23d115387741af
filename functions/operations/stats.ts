/**
 * The figures of GET /stats and the dispatcher's missed-backup check, read from the tables:
 * backup executions of the last 7 days, images, datastores, schedules and backup jobs (scans,
 * as the lists of the API; the figures are computed by core/stats.ts and core/missed-backups.ts).
 */
import { lastSuccessfulBackups, type MissedBackup, missedBackups } from '#core/missed-backups.ts';
import type { Image } from '#core/model.ts';
import type { Owned } from '#core/permissions.ts';
import { computeStats, STATS_WINDOWS, type Stats } from '#core/stats.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { images } from '../repo/images.ts';
import { jobs } from '../repo/jobs.ts';
import { schedules } from '../repo/schedules.ts';
import { vms } from '../repo/vms.ts';

/** The VMs missing their scheduled backup at `now`, from the tables (`imageList` when already read). */
export async function findMissedBackups(
  now: Date,
  read: { images?: readonly Image[]; vmIds?: ReadonlySet<number> } = {},
): Promise<MissedBackup[]> {
  const [allSchedules, allJobs, allImages, vmIds] = await Promise.all([
    schedules.list(),
    jobs.list(),
    read.images ?? images.list(),
    read.vmIds ?? vms.list().then((list) => new Set(list.map((vm) => vm.id))),
  ]);
  return missedBackups({
    now,
    schedules: allSchedules,
    jobVms: new Map(allJobs.map((job) => [job.id, job.vmIds])),
    lastSuccess: lastSuccessfulBackups(allImages),
    vmIds,
  });
}

/**
 * The figures of the VMs, images and datastores `mayUse` lets through (the API's canUse: admins
 * everything), at `now`; backups and missed backups count for their VM.
 */
export async function readStats(mayUse: (object: Owned) => boolean, now = new Date()): Promise<Stats> {
  const since = new Date(now.getTime() - Math.max(...Object.values(STATS_WINDOWS))).toISOString();
  const [allVms, allImages, allDatastores, ended] = await Promise.all([
    vms.list(),
    images.list(),
    datastores.list(),
    executions.list({
      expression: '#k = :backup AND #e > :since',
      names: { '#k': 'kind', '#e': 'endedAt' },
      values: { ':backup': 'backup', ':since': since },
    }),
  ]);
  const mine = new Set(allVms.filter((vm) => mayUse(vm)).map((vm) => vm.id));
  const missed = await findMissedBackups(now, {
    images: allImages,
    vmIds: new Set(allVms.map((vm) => vm.id)),
  });
  return computeStats({
    now,
    executions: ended.filter((e) => e.vmId !== undefined && mine.has(e.vmId)),
    images: allImages.filter((image) => mayUse(image)),
    datastores: allDatastores.filter((ds) => mayUse(ds)),
    missed: missed.filter((m) => mine.has(m.vmId)),
  });
}
