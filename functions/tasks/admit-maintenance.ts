/**
 * Maintenance step Admit: checks the datastore, the image (for delete, download and verify) and
 * the host chosen when the operation was queued, and builds the host task. The Maintenance
 * machine sends the union of its kinds' fields (MAINTENANCE_TASK_FIELDS), so every field a kind
 * lacks is null here; the runner's schemas strip them. Idempotent (no writes beyond the phase).
 */
import {
  CatalogTask,
  DownloadTask,
  DrillTask,
  MAINTENANCE_TASK_FIELDS,
  MonitorTask,
  RmTask,
  VerifyTask,
} from '#core/contracts/tasks.ts';
import { drillPoints } from '#core/drill.ts';
import { Conflict, ValidationError } from '#core/errors.ts';
import type { Image } from '#core/model.ts';
import { recordedSums } from '#core/recorded-sums.ts';
import { limits } from '../env.ts';
import { drillStarted } from '../operations/drill.ts';
import { MaintenanceInput, sourcesOf, TASK_KIND_OF } from '../operations/maintenance.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { step, taskDatastore, taskHeader } from './common.ts';
import { admitFlatten } from './flatten.ts';

const omitHeader = { taskId: true, token: true } as const;
const SCHEMAS = {
  rm: RmTask.omit(omitHeader),
  monitor: MonitorTask.omit(omitHeader),
  download: DownloadTask.omit(omitHeader),
  verify: VerifyTask.omit(omitHeader),
  catalog: CatalogTask.omit(omitHeader),
  drill: DrillTask.omit(omitHeader),
};

/** The image the operation works on, in the state the operation needs. */
async function imageFor(input: MaintenanceInput): Promise<Image> {
  if (input.imageId === null) throw new ValidationError(`imageId: a ${input.kind} needs an image`);
  const image = await images.get(input.imageId);
  // A backup a flatten merged away is removed while its image lives on.
  const unreferenced = input.backupId !== null && !sourcesOf(image).includes(input.backupId);
  if (input.kind === 'delete' && image.state !== 'DELETING' && !unreferenced) {
    throw new Conflict(`Image ${image.id} is ${image.state}, not DELETING: its data is kept`);
  }
  if (input.kind !== 'delete' && image.state !== 'READY') {
    throw new Conflict(`Image ${image.id} is ${image.state}: only READY images can be read`);
  }
  return image;
}

export const handler = step('AdmitMaintenance', MaintenanceInput, async (input) => {
  const { executionId } = input;
  await executions.update(executionId, { state: 'RUNNING', phase: 'admitting' });
  const datastore = await datastores.get(input.datastoreId);
  const host = await hosts.get(input.hostId);
  if (!host.queueUrl) throw new Conflict(`Host ${host.id} has no task queue`);
  const kind = TASK_KIND_OF[input.kind];
  const { heartbeatSeconds } = limits();
  if (kind === 'flatten') {
    const { image, task } = await admitFlatten(input, datastore, host, heartbeatSeconds);
    await executions.update(executionId, { phase: 'running', hostId: host.id });
    return { hostId: host.id, imageId: image.id, queueUrl: host.queueUrl, task: withAllFields(task) };
  }
  if (kind === 'drill') {
    const image = await imageFor(input);
    if (input.drillId === undefined) throw new ValidationError('drillId: a drill needs its report id');
    if (!image.template)
      throw new Conflict(`Image ${image.id} holds no VM template: a drill has no VM to define`);
    const task = SCHEMAS.drill.parse({
      ...taskHeader(kind, heartbeatSeconds, host.id),
      drillId: input.drillId,
      imageId: image.id,
      vmId: image.vmId,
      datastore: await taskDatastore(datastore, host, image),
      points: drillPoints(image),
      latestOnly: input.latestOnly ?? false,
      template: image.template,
      emulatorCpus: host.emulatorCpus ?? null,
    });
    await drillStarted(input.drillId);
    await executions.update(executionId, { phase: 'running', hostId: host.id });
    return { hostId: host.id, imageId: image.id, queueUrl: host.queueUrl, task: withAllFields(task) };
  }
  // A datastore's own operations work on no image.
  const image = kind === 'monitor' || kind === 'catalog' ? null : await imageFor(input);
  const backupId = input.backupId ?? image?.source ?? null;
  if (image && !backupId) throw new Conflict(`Image ${image.id} has no stored backup`);
  const fields = SCHEMAS[kind as keyof typeof SCHEMAS].parse({
    ...taskHeader(kind, heartbeatSeconds, host.id),
    datastore: await taskDatastore(datastore, host, image),
    ...(image && { vmId: image.vmId, backupId }),
    ...(kind === 'download' && { file: input.file, toPath: input.toPath, confine: input.confine }),
    ...(kind === 'verify' && image && backupId && { sums: recordedSums(image, backupId) }),
  });
  await executions.update(executionId, { phase: 'running', hostId: host.id });
  return {
    hostId: host.id,
    imageId: image?.id ?? null,
    queueUrl: host.queueUrl,
    task: withAllFields(fields),
  };
});

/** Every field of the machine's message, null where this kind has none. */
function withAllFields(fields: object): Record<string, unknown> {
  return { ...Object.fromEntries(MAINTENANCE_TASK_FIELDS.map((f) => [f, null])), ...fields };
}
