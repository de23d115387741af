/**
 * The runner's structured logger: the shared JSON-lines logger with the runner's own fields
 * (host id, and per task the task id, execution id and VM id) on every line. Never pass secret
 * values or task tokens as fields.
 */
import { type Level, log } from '#platform/log.ts';

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

/** Secret values shorter than this are not masked (masking `1` would shred every line). */
const MIN_SECRET_LENGTH = 4;

/**
 * A logger that masks `secrets` (read when each line is written, so values added later count)
 * in the message and in every string of the fields: a task's secrets stay out of its log even
 * when a tool or a driver echoes them into an error message.
 */
export function maskingLogger(logger: Logger, secrets: readonly string[]): Logger {
  const mask = (text: string) =>
    secrets.reduce(
      (out, secret) => (secret.length >= MIN_SECRET_LENGTH ? out.split(secret).join('***') : out),
      text,
    );
  const deep = (value: unknown): unknown =>
    typeof value === 'string'
      ? mask(value)
      : Array.isArray(value)
        ? value.map(deep)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v)]))
          : value;
  const masked = (level: Level, message: string, fields?: Record<string, unknown>) =>
    logger(level, mask(message), fields && (deep(fields) as Record<string, unknown>));
  return Object.assign(masked, {
    child: (more: Record<string, unknown>) => maskingLogger(logger.child(more), secrets),
  });
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = Object.assign(() => {}, { child: () => silentLogger });
