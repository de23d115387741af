/**
 * `lifeboat datastore import`: a datastore's images rebuilt from its catalog (what a `catalog`
 * task read from the datastore alone), so a control plane that lost its database can list and
 * restore every backup again. The plan is core/catalog.ts's; this writes it.
 *
 * - Idempotent: a group of backups the control plane already names (any image of the datastore,
 *   in any state) is left alone, so importing twice (or a retried Commit) changes nothing.
 * - Untrusted input: each catalog entry is checked on its own (CatalogEntry); a bad one is
 *   skipped and named in the result, never written.
 * - Ids: an image keeps the id the datastore recorded when no record holds it; the id counters
 *   of images and VMs are raised past every id the datastore holds, so the images and VMs this
 *   control plane makes later never share an id (a restic tag, a repository) with them.
 * - Owner: the VM's owner, group and permissions when the VM is known: the VM whose libvirt
 *   domain UUID the stored template names (a fresh control plane numbers its VMs afresh, so the
 *   stored VM id may now be another VM's: never trusted for ownership); else the admin's. The
 *   image keeps the stored VM id: it is where the datastore keeps the data (`<BASE_PATH>/<vmid>`).
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ADMIN_GROUP } from '#core/accounts.ts';
import { type CatalogBackup, type PlannedImage, planImport, templateUuid } from '#core/catalog.ts';
import { CatalogEntry, CatalogResult } from '#core/contracts/tasks.ts';
import type { Image } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { tableName } from '../env.ts';
import { allocateId, type IdKind } from '../repo/counters.ts';
import { images, listImages } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { vmsByUuid } from '../repo/vms.ts';
import { sourcesOf } from './maintenance.ts';

/** Who imported images belong to when their VM is unknown. */
const ADMIN_OWNERSHIP = { owner: 'admin', group: ADMIN_GROUP, permissions: 'um-------' } as const;

/** What an import did: the execution's `params.result`, and `lifeboat datastore import`'s summary. */
export interface ImportSummary {
  imported: number;
  /** Images (groups of backups) the control plane already knew. */
  known: number;
  /** The ids of the images written. */
  imageIds: number[];
  /** Backups left out, with why (at most 50 named). */
  skipped: { backupId: string; reason: string }[];
  skippedCount: number;
}

/** The checked catalog: each entry on its own, its template resolved; bad entries named. */
export function readCatalog(raw: unknown): { backups: CatalogBackup[]; invalid: ImportSummary['skipped'] } {
  const result = CatalogResult.parse(raw);
  const backups: CatalogBackup[] = [];
  const invalid: ImportSummary['skipped'] = [];
  for (const [i, item] of result.backups.entries()) {
    const parsed = CatalogEntry.safeParse(item);
    if (!parsed.success) {
      const id = (item as { backupId?: unknown } | null)?.backupId;
      invalid.push({
        backupId: typeof id === 'string' ? id.slice(0, 64) : `#${i}`,
        reason: `not a backup Lifeboat stored: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`,
      });
      continue;
    }
    const { template, ...entry } = parsed.data;
    backups.push({ ...entry, template: template === null ? null : (result.templates[template] ?? null) });
  }
  return { backups, invalid };
}

/** Raises counter `id:<kind>` to at least `value` (never lowers it). */
async function raiseCounter(kind: IdKind, value: number): Promise<void> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName('counters'),
        Key: { name: `id:${kind}` },
        UpdateExpression: 'SET #v = :v',
        ConditionExpression: 'attribute_not_exists(#v) OR #v < :v',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':v': value },
      }),
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
  }
}

/** Writes one planned image under its recorded id when free, else under a new one. */
async function writeImage(datastoreId: number, planned: PlannedImage, now: string): Promise<number> {
  const uuid = templateUuid(planned.template);
  const [vm] = uuid ? await vmsByUuid(uuid) : [];
  const ownership = vm ? { owner: vm.owner, group: vm.group, permissions: vm.permissions } : ADMIN_OWNERSHIP;
  const free = planned.preferredId !== null && !(await images.find(planned.preferredId));
  const id = free ? (planned.preferredId as number) : await allocateId('image');
  const image: Image = {
    ...ownership,
    id,
    name: `${planned.vmId}-import-${planned.source.slice(0, 16)}`,
    type: 'BACKUP',
    datastoreId,
    vmId: planned.vmId,
    state: 'READY',
    mode: planned.mode,
    source: planned.source,
    size: planned.size,
    disks: planned.disks,
    template: planned.template,
    increments: planned.increments,
    ...(planned.jobId !== null && { jobId: planned.jobId }),
    createdAt: planned.createdAt || now,
  };
  try {
    await images.put(image, { expression: 'attribute_not_exists(id)' });
    return id;
  } catch (err) {
    // Taken meanwhile: a new id.
    if (!(free && isConditionFailed(err))) throw err;
    const other = await allocateId('image');
    await images.put({ ...image, id: other }, { expression: 'attribute_not_exists(id)' });
    return other;
  }
}

/**
 * Imports the catalog a `catalog` task answered (`raw`, untrusted) into datastore `datastoreId`:
 * writes the images it holds that the control plane does not know; answers what it did.
 */
export async function importCatalog(datastoreId: number, raw: unknown): Promise<ImportSummary> {
  const { backups, invalid } = readCatalog(raw);
  const known = new Set((await listImages({ datastoreId })).flatMap((image) => sourcesOf(image)));
  const plan = planImport(backups, known);
  const maxOf = (values: number[]) => values.reduce((a, b) => Math.max(a, b), 0);
  await raiseCounter('image', maxOf(backups.map((b) => b.imageId ?? 0)));
  await raiseCounter('vm', maxOf(backups.map((b) => b.vmId)));
  const now = new Date().toISOString();
  const imageIds: number[] = [];
  for (const planned of plan.images) imageIds.push(await writeImage(datastoreId, planned, now));
  const skipped = [...invalid, ...plan.skipped];
  log('info', 'datastore catalog imported', {
    datastoreId,
    imported: imageIds.length,
    known: plan.known,
    skipped: skipped.length,
  });
  return {
    imported: imageIds.length,
    known: plan.known,
    imageIds,
    skipped: skipped.slice(0, 50),
    skippedCount: skipped.length,
  };
}
