/**
 * The runner's structured logger: the shared JSON-lines logger with the runner's own fields
 * (host id, and per task the task id, execution id and VM id) on every line. Never pass secret
 * values or task tokens as fields.
 */
import { type Level, log } from '#functions/log.ts';

export type { Level };

/** Writes one log line with the bound fields plus `fields`; `child` binds more fields. */
export interface Logger {
  (level: Level, message: string, fields?: Record<string, unknown>): void;
  child(more: Record<string, unknown>): Logger;
}

/** A logger adding `bound` to every line. */
export function makeLogger(bound: Record<string, unknown> = {}): Logger {
  const logger = (level: Level, message: string, fields: Record<string, unknown> = {}) =>
    log(level, message, { component: 'runner', ...bound, ...fields });
  return Object.assign(logger, {
    child: (more: Record<string, unknown>) => makeLogger({ ...bound, ...more }),
  });
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = Object.assign(() => {}, { child: () => silentLogger });
