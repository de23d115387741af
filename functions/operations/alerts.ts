/**
 * What is reported when something goes wrong that people must hear of: a backup that failed, a
 * VM missing its scheduled backup, a verification that found a fault. Each is counted
 * (functions/metrics.ts, which the alarms of infra/alarms.ts watch) and notified
 * (functions/notify.ts). None throws: the operation reported on ends the same either way.
 */

import type { MissedBackup } from '#core/missed-backups.ts';
import { verifyFailureMetric } from '../metrics.ts';
import { notify } from '../notify.ts';
import type { ExecutionRecord } from '../repo/executions.ts';

/** A backup that ended without success (FAILED, TIMED_OUT or ABORTED): notified. */
export async function backupFailed(
  record: Pick<ExecutionRecord, 'id' | 'vmId' | 'datastoreId' | 'imageId'>,
  ending: { state: string; endedAt: string; error?: { name: string; message: string } },
): Promise<boolean> {
  const why = ending.error ? `: ${ending.error.name}: ${ending.error.message}` : '';
  return notify({
    kind: 'backup.failed',
    at: ending.endedAt,
    message: `backup of VM ${record.vmId ?? '?'} ${ending.state.toLowerCase().replace('_', ' ')}${why}`.slice(
      0,
      800,
    ),
    executionId: record.id,
    ...(record.vmId !== undefined && { vmId: record.vmId }),
    ...(record.datastoreId !== undefined && { datastoreId: record.datastoreId }),
    ...(ending.error && { error: ending.error }),
  });
}

/** A VM newly found missing its scheduled backup: notified (once: see missed-backups.ts). */
export async function backupMissed(missed: MissedBackup, now: Date): Promise<boolean> {
  const last = missed.lastSuccessAt ? `last success ${missed.lastSuccessAt}` : 'never backed up';
  return notify({
    kind: 'backup.missed',
    at: now.toISOString(),
    message: `VM ${missed.vmId} missed its scheduled backup (schedule ${missed.scheduleId}, every ${missed.periodSeconds} s; ${last})`,
    vmId: missed.vmId,
    scheduleId: missed.scheduleId,
  });
}

/** What a verification that found a fault reports. */
export interface VerifyFailure {
  datastoreId?: number;
  imageId?: number;
  vmId?: number;
  executionId?: string;
  /** What was found (`disk.0.raw: sha256 mismatch`), as shown to users. */
  message: string;
  at?: string;
}

/**
 * A verification (after a backup, a verify job, a restore drill) found a fault: the
 * VerifyFailures metric (its alarm) and a notification. For the verification code to call.
 */
export async function verifyFailed(failure: VerifyFailure): Promise<boolean> {
  try {
    verifyFailureMetric(failure.datastoreId);
  } catch {
    // Counting is best effort; the notification still goes.
  }
  const what = failure.imageId === undefined ? 'verification' : `verification of image ${failure.imageId}`;
  return notify({
    kind: 'verify.failed',
    at: failure.at ?? new Date().toISOString(),
    message: `${what} failed: ${failure.message}`.slice(0, 800),
    ...(failure.vmId !== undefined && { vmId: failure.vmId }),
    ...(failure.datastoreId !== undefined && { datastoreId: failure.datastoreId }),
    ...(failure.imageId !== undefined && { imageId: failure.imageId }),
    ...(failure.executionId !== undefined && { executionId: failure.executionId }),
  });
}
