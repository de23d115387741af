/**
 * Errors of the Step Functions API as the shim reports them (`{ __type, message }`, HTTP 400),
 * and the task failure the interpreter sees when a task state fails.
 */

/** An API error with the AWS error code the SDK maps to its exception class. */
export class SfnApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

/**
 * A task state's failure. The interpreter's Catch copies `name` to `Error` and `message` to
 * `Cause`, so these carry exactly what AWS would put there.
 */
export class TaskFailed extends Error {
  constructor(error: string, cause: string) {
    super(cause);
    this.name = error;
  }
}
