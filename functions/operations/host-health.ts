/**
 * Host health: a host whose runner has not reported (inventory, every minute and on every
 * libvirt event) for HOST_OFFLINE_SECONDS becomes OFFLINE; its next report makes it MONITORED
 * again. An admin's DISABLED stays until `host enable`, whatever the runner reports. OFFLINE
 * and DISABLED hosts start no queued work (the dispatcher leaves it waiting); what already runs
 * on them ends by its own heartbeat timeout, as before.
 */
import type { Host } from '#core/model.ts';
import { log } from '#platform/log.ts';
import { limits } from '../env.ts';
import { hosts } from '../repo/hosts.ts';
import { isConditionFailed } from '../repo/table.ts';

/** Whether queued work may start on the host now. */
export function takesWork(host: Pick<Host, 'state'>): boolean {
  return host.state !== 'OFFLINE' && host.state !== 'DISABLED';
}

/** The state a host is enabled into: MONITORED when its runner reported lately, else OFFLINE. */
export function enabledState(host: Pick<Host, 'lastHeartbeat'>, now = Date.now()): Host['state'] {
  const seen = Date.parse(host.lastHeartbeat ?? '');
  return Number.isFinite(seen) && now - seen < limits().hostOfflineSeconds * 1000 ? 'MONITORED' : 'OFFLINE';
}

/**
 * Marks OFFLINE every MONITORED host silent for HOST_OFFLINE_SECONDS (conditional on the report
 * it was judged by: a report racing in wins). Answers their ids. Run by the dispatcher's
 * periodic run (every minute).
 */
export async function markSilentHostsOffline(now = Date.now()): Promise<number[]> {
  const cutoff = new Date(now - limits().hostOfflineSeconds * 1000).toISOString();
  const silent = await hosts.list({
    expression: '#s = :m AND (attribute_not_exists(#h) OR #h < :cut)',
    names: { '#s': 'state', '#h': 'lastHeartbeat' },
    values: { ':m': 'MONITORED', ':cut': cutoff },
  });
  const marked: number[] = [];
  for (const host of silent) {
    try {
      await hosts.update(
        host.id,
        { state: 'OFFLINE' },
        {
          condition:
            host.lastHeartbeat === undefined
              ? {
                  expression: '#s = :m AND attribute_not_exists(#h)',
                  names: { '#s': 'state', '#h': 'lastHeartbeat' },
                  values: { ':m': 'MONITORED' },
                }
              : {
                  expression: '#s = :m AND #h = :seen',
                  names: { '#s': 'state', '#h': 'lastHeartbeat' },
                  values: { ':m': 'MONITORED', ':seen': host.lastHeartbeat },
                },
        },
      );
      marked.push(host.id);
      log('warn', 'host OFFLINE: its runner has not reported', {
        hostId: host.id,
        lastHeartbeat: host.lastHeartbeat ?? null,
        offlineSeconds: limits().hostOfflineSeconds,
      });
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }
  return marked;
}
