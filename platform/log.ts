/**
 * The handlers' one logger: one JSON object per line (CloudWatch and local mode both keep
 * stdout). Callers pass ids (requestId, executionId, vmId, hostId), never secret values.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

/** Write one structured log line. */
export function log(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields });
  if (level === 'error' || level === 'warn') console.error(line);
  else if (process.env.LIFEBOAT_LOG_LEVEL !== 'quiet') console.log(line);
}
