/**
 * Host health, the rules: a host whose runner has not reported for the deployment's offline time
 * is silent (OFFLINE); an admin's DISABLED stays until enabled; neither starts queued work.
 * Pure: functions/operations/host-health.ts applies them to the hosts table.
 */
import type { Host } from './model.ts';

/** Whether queued work may start on the host now. */
export function takesWork(host: Pick<Host, 'state'>): boolean {
  return host.state !== 'OFFLINE' && host.state !== 'DISABLED';
}

/** Whether the host's runner has not reported within `offlineSeconds` of `now` (or never). */
export function isSilent(host: Pick<Host, 'lastHeartbeat'>, now: number, offlineSeconds: number): boolean {
  const seen = Date.parse(host.lastHeartbeat ?? '');
  return !Number.isFinite(seen) || now - seen >= offlineSeconds * 1000;
}

/** The state a DISABLED host is enabled into: MONITORED when its runner reported lately, else OFFLINE. */
export function enabledState(
  host: Pick<Host, 'lastHeartbeat'>,
  now: number,
  offlineSeconds: number,
): 'MONITORED' | 'OFFLINE' {
  return isSilent(host, now, offlineSeconds) ? 'OFFLINE' : 'MONITORED';
}
