/**
 * Host health: a host whose runner has not reported (inventory, every minute and on every
 * libvirt event) for HOST_OFFLINE_SECONDS becomes OFFLINE; its next report makes it MONITORED
 * again. An admin's DISABLED stays until `host enable`, whatever the runner reports. OFFLINE
 * and DISABLED hosts start no queued work (the dispatcher leaves it waiting); what already runs
 * on them ends by its own heartbeat timeout, as before. The rules are core/host-health.ts.
 */
import { log } from '#platform/log.ts';
import { limits } from '../env.ts';
import { hosts } from '../repo/hosts.ts';
import { isConditionFailed } from '../repo/table.ts';

/**
 * Marks OFFLINE every MONITORED host silent for HOST_OFFLINE_SECONDS (conditional on the report
 * it was judged by: a report racing in wins). Answers their ids. Run by the dispatcher's
 * periodic run (every minute).
 */
export async function markSilentHostsOffline(now = Date.now()): Promise<number[]> {
  const { hostOfflineSeconds } = limits();
  const cutoff = new Date(now - hostOfflineSeconds * 1000).toISOString();
  const silent = await hosts.list({
    expression: '#s = :m AND (attribute_not_exists(#h) OR #h < :cut)',
    names: { '#s': 'state', '#h': 'lastHeartbeat' },
    values: { ':m': 'MONITORED', ':cut': cutoff },
  });
  const marked: number[] = [];
  for (const host of silent) {
    try {
      // Still MONITORED and no report since the one it was judged by ('' when none).
      await hosts.update(
        host.id,
        { state: 'OFFLINE' },
        {
          condition: {
            expression: '#s = :m AND (attribute_not_exists(#h) OR #h = :seen)',
            names: { '#s': 'state', '#h': 'lastHeartbeat' },
            values: { ':m': 'MONITORED', ':seen': host.lastHeartbeat ?? '' },
          },
        },
      );
      marked.push(host.id);
      log('warn', 'host OFFLINE: its runner has not reported', {
        hostId: host.id,
        lastHeartbeat: host.lastHeartbeat ?? null,
        offlineSeconds: hostOfflineSeconds,
      });
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }
  return marked;
}
