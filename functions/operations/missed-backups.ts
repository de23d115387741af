/**
 * The dispatcher's periodic check of missed backups (core/missed-backups.ts), every
 * MISSED_CHECK_MINUTES (default 5; 0: never): the MissedBackups metric (how many VMs are missing
 * their scheduled backup now, which infra/alarms.ts watches) and one notification per VM newly
 * missed. One counters item, `missed-backups`, holds the VMs already told and when the next check
 * is due; it is written conditionally on its version, so of two runs at once one checks and
 * tells, and a VM is told once per miss, not every period (it is told again after it has backed
 * up and missed anew).
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '#platform/aws.ts';
import { intSetting, tableName } from '../env.ts';
import { missedBackupsMetric } from '../metrics.ts';
import { isConditionFailed } from '../repo/table.ts';
import { backupMissed } from './alerts.ts';
import { findMissedBackups } from './stats.ts';

/** Name of the check's item in the counters table. */
export const MISSED_STATE = 'missed-backups';

/** MISSED_CHECK_MINUTES (CDK context `missedCheckMinutes`), default 5; 0 turns the check off. */
export function missedCheckMinutes(): number {
  return intSetting('MISSED_CHECK_MINUTES', 5, 0);
}

interface MissedState {
  /** Bumped by every check: the condition of the next write. */
  value: number;
  /** VMs missed at the last check (already told). */
  vms: number[];
  /** Epoch ms of the next check. */
  nextCheckAt: number;
}

async function readState(): Promise<MissedState | undefined> {
  const out = await dynamo().send(
    new GetCommand({ TableName: tableName('counters'), Key: { name: MISSED_STATE }, ConsistentRead: true }),
  );
  return out.Item as MissedState | undefined;
}

/**
 * Check when due: answers the VMs newly missed (each notified), [] when not due, or when another
 * run checked meanwhile.
 */
export async function checkMissedBackups(now = new Date()): Promise<number[]> {
  const minutes = missedCheckMinutes();
  if (minutes === 0) return [];
  const state = await readState();
  if (state && state.nextCheckAt > now.getTime()) return [];
  const missed = await findMissedBackups(now);
  const told = new Set(state?.vms ?? []);
  try {
    await dynamo().send(
      new PutCommand({
        TableName: tableName('counters'),
        Item: {
          name: MISSED_STATE,
          value: (state?.value ?? 0) + 1,
          vms: missed.map((m) => m.vmId),
          nextCheckAt: now.getTime() + minutes * 60_000,
        },
        ConditionExpression: state ? '#v = :v' : 'attribute_not_exists(#n)',
        ExpressionAttributeNames: state ? { '#v': 'value' } : { '#n': 'name' },
        ExpressionAttributeValues: state ? { ':v': state.value } : undefined,
      }),
    );
  } catch (err) {
    if (isConditionFailed(err)) return [];
    throw err;
  }
  missedBackupsMetric(missed.length);
  const fresh = missed.filter((m) => !told.has(m.vmId));
  for (const m of fresh) await backupMissed(m, now);
  return fresh.map((m) => m.vmId);
}
