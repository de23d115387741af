/**
 * Errors of the CLI process. Each carries the exit code the contract asks for: 2 for bad usage
 * or input (including the API's 4xx answers but 403), 1 when the operation failed or was refused
 * for lack of rights (403, `Forbidden: ...`; 5xx, no API, a failed execution). `main.ts` prints the message as one line on stderr and exits with the code.
 */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

/** Bad usage or input detected by the CLI itself: exit 2. */
export class UsageError extends CliError {
  override readonly name: string = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}

/** The API answered with an error document `{ error, message }`. */
export class ApiError extends CliError {
  override readonly name: string = 'ApiError';
  constructor(
    readonly status: number,
    /** The API's error name (`NotFound`, `ValidationError`, ...). */
    readonly error: string,
    message: string,
  ) {
    // CLI.md: a refusal for lack of rights (403) is exit 1 with `Forbidden: ...`; other 4xx are
    // bad input (exit 2).
    super(
      status === 403 && !message.startsWith('Forbidden:') ? `Forbidden: ${message}` : message,
      status === 403 ? 1 : status >= 400 && status < 500 ? 2 : 1,
    );
  }
}

/** The API could not be reached at all. */
export class ConnectionError extends CliError {
  override readonly name: string = 'ConnectionError';
  constructor(endpoint: string) {
    super(`cannot reach the Lifeboat API at ${endpoint}: is it running? try \`lifeboat local up\``, 1);
  }
}
