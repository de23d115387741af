/**
 * Maintenance step Commit: records the runner's answer (`$.host`) by kind. delete: the removed
 * backup leaves the image, and the image record goes once none is left; download and verify:
 * the result on the execution; monitor: the datastore's capacity and a sample of it; flatten: the chain's new base
 * (see `flatten.ts`) and the removal of the merged backups queued; import: the images the
 * datastore's catalog holds and the control plane does not (operations/import.ts); drill: the
 * report OK with its points, bytes and seconds, and the image verified (operations/drill.ts). Idempotent.
 */
import { z } from 'zod';
import { DownloadResult, DrillResult, MonitorResult, RmResult, VerifyResult } from '#core/contracts/tasks.ts';
import { Conflict } from '#core/errors.ts';
import { retry } from '#platform/retry.ts';
import { recordCapacity } from '../operations/capacity.ts';
import { drillSucceeded } from '../operations/drill.ts';
import { FLATTEN_REQUESTER } from '../operations/flatten.ts';
import { importCatalog } from '../operations/import.ts';
import { enqueueMaintenance, MaintenanceInput, sourcesOf } from '../operations/maintenance.ts';
import { deleteImageRecord } from '../operations/quota.ts';
import { recordVerification } from '../operations/verify.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { wakeDispatcher } from '../wake.ts';
import { step } from './common.ts';
import { commitFlatten } from './flatten.ts';

/** The runner's answer is under `host`; its schema depends on the kind (checked below). */
export const CommitMaintenanceInput = MaintenanceInput.extend({ host: z.unknown() });
type CommitMaintenanceInput = z.infer<typeof CommitMaintenanceInput>;

/**
 * Forget `backupId` in the image: gone from its source and increments; the record is deleted
 * when no stored backup remains. Retries when another delete of the same image commits meanwhile.
 */
async function forgetBackup(imageId: number, backupId: string): Promise<{ removed: boolean }> {
  return retry(
    async () => {
      const image = await images.find(imageId);
      if (!image) return { removed: true };
      // A backup a flatten merged away: the image no longer names it.
      if (image.state !== 'DELETING' && !sourcesOf(image).includes(backupId)) return { removed: false };
      const remaining = sourcesOf(image).filter((s) => s !== backupId);
      const unchanged = {
        expression: '#s = :s AND #src = :src',
        names: { '#s': 'state', '#src': 'source' },
        values: { ':s': 'DELETING', ':src': image.source },
      };
      try {
        if (remaining.length === 0) {
          // Its datastore quota charge goes back with the record, in one transaction.
          await deleteImageRecord(image, unchanged);
          return { removed: true };
        }
        await images.put(
          {
            ...image,
            source: image.source === backupId ? '' : image.source,
            increments: image.increments.filter((i) => i.source !== backupId),
          },
          unchanged,
        );
        return { removed: false };
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        const now = await images.find(imageId);
        if (now && now.state !== 'DELETING') {
          throw new Conflict(`Image ${imageId} is ${now.state}, not DELETING: its record is kept`);
        }
        throw err;
      }
    },
    {
      attempts: 8,
      retryOn: isConditionFailed,
      exhausted: () =>
        new Conflict(`Image ${imageId} kept changing while its backup ${backupId} was forgotten`),
    },
  );
}

/** Queues the removal of the backups a flatten merged away (one `delete` each); answers their execution ids. */
async function removeMerged(input: CommitMaintenanceInput, backupIds: readonly string[]): Promise<string[]> {
  if (backupIds.length === 0 || input.imageId === null) return [];
  const [image, datastore, host] = await Promise.all([
    images.get(input.imageId),
    datastores.get(input.datastoreId),
    hosts.get(input.hostId),
  ]);
  const queued: string[] = [];
  for (const backupId of backupIds) {
    const execution = await enqueueMaintenance(
      FLATTEN_REQUESTER,
      { kind: 'delete', host, datastore, image, backupId },
      { wake: false },
    );
    queued.push(execution.id);
  }
  await wakeDispatcher(`flatten ${input.executionId} merged ${backupIds.length} backups`);
  return queued;
}

export const handler = step('CommitMaintenance', CommitMaintenanceInput, async (input) => {
  const { executionId } = input;
  await executions.update(executionId, { phase: 'committing' });
  switch (input.kind) {
    case 'delete': {
      const parsed = RmResult.parse(input.host);
      const { removed } =
        input.imageId === null || input.backupId === null
          ? { removed: false }
          : await forgetBackup(input.imageId, input.backupId);
      await executions.update(executionId, {
        phase: 'done',
        'params.result': { ...parsed, imageRemoved: removed },
      });
      return { imageRemoved: removed };
    }
    case 'monitor': {
      const capacity = MonitorResult.parse(input.host);
      await recordCapacity(input.datastoreId, capacity, executionId);
      await executions.update(executionId, { phase: 'done', 'params.result': capacity });
      return capacity;
    }
    case 'download': {
      const result = DownloadResult.parse(input.host);
      await executions.update(executionId, {
        phase: 'done',
        bytesDone: result.size,
        bytesTotal: result.size,
        'params.result': result,
      });
      return result;
    }
    case 'flatten': {
      const unreferenced = await commitFlatten(input, input.host);
      const queued = await removeMerged(input, unreferenced);
      await executions.update(executionId, { phase: 'done', 'params.result': { removing: queued } });
      return { removing: queued };
    }
    case 'import': {
      const result = await importCatalog(input.datastoreId, input.host);
      await executions.update(executionId, { phase: 'done', 'params.result': result });
      return result;
    }
    case 'drill': {
      const result = DrillResult.parse(input.host);
      const { createdAt } = await executions.get(executionId);
      if (input.drillId !== undefined && input.imageId !== null)
        await drillSucceeded(input.drillId, input.imageId, result, createdAt);
      await executions.update(executionId, {
        phase: 'done',
        bytesDone: result.bytes,
        bytesTotal: result.bytes,
        'params.result': result,
      });
      return result;
    }
    case 'verify': {
      const result = VerifyResult.parse(input.host);
      if (input.imageId !== null) {
        const { createdAt } = await executions.get(executionId);
        await recordVerification(input.imageId, { state: 'OK', queuedAt: createdAt });
      }
      await executions.update(executionId, { phase: 'done', 'params.result': result });
      return result;
    }
  }
});
