/**
 * Typed errors. The `name` of each class is a contract: the state machines retry on it
 * (only the names in {@link TRANSIENT_ERRORS}), the runner reports it through SendTaskFailure,
 * and the API maps it to an HTTP status. Never rename one.
 *
 * Each class states its `name` as a string literal: the Lambda bundles are minified, which
 * renames classes, so `new.target.name` would ship `Conflict` as a one-letter name (in the API's
 * `error` and in a step's errorType). test/infra/error-names.test.ts bundles them to check.
 */
export class LifeboatError extends Error {
  override readonly name: string = 'LifeboatError';
  /** HTTP status the API answers with when this error reaches it. */
  readonly status: number = 500;
}

/** Input that does not satisfy a schema or a rule: the caller must change it. */
export class ValidationError extends LifeboatError {
  override readonly name: string = 'ValidationError';
  override readonly status = 400;
}

/** Missing or wrong credentials. */
export class Unauthorized extends LifeboatError {
  override readonly name: string = 'Unauthorized';
  override readonly status = 401;
}

/** Authenticated, but not allowed to do this. */
export class Forbidden extends LifeboatError {
  override readonly name: string = 'Forbidden';
  override readonly status = 403;
}

/** The object named does not exist. */
export class NotFound extends LifeboatError {
  override readonly name: string = 'NotFound';
  override readonly status = 404;
}

/** The object exists but is in a state that forbids the operation (locked, in use, ...). */
export class Conflict extends LifeboatError {
  override readonly name: string = 'Conflict';
  override readonly status = 409;
}

/** The datastore is locked by another operation; retried by the state machine. */
export class DatastoreLocked extends LifeboatError {
  override readonly name: string = 'DatastoreLocked';
  override readonly status = 503;
}

/** An AWS service throttled us; retried by the state machine. */
export class Throttled extends LifeboatError {
  override readonly name: string = 'Throttled';
  override readonly status = 503;
}

/**
 * Error names the state machines retry. Everything else fails the execution (and runs Cleanup).
 * Each is thrown by a real code path (test/infra/transient-errors.test.ts checks it):
 * `DatastoreLocked` by the restic driver, `Throttled` by the step wrapper on DynamoDB throttling
 * or a transaction conflict. There is no "host busy": a runner at its task limit does not take
 * work from its queue (runner/poller.ts), and the Dispatcher holds MAX_BACKUPS_HOST.
 */
export const TRANSIENT_ERRORS = ['DatastoreLocked', 'Throttled'] as const;

/**
 * An error message as it leaves for a person (an API answer, a task failure's cause): one line,
 * its control characters escaped as `\uXXXX` (a newline or a terminal escape a check quoted from
 * its input never reaches a terminal or a log reader raw), cut to `max` characters.
 */
export function oneLine(message: string, max: number): string {
  const escaped = message.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped;
}
