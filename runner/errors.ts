/**
 * Errors the runner itself raises. Their `name` is what the state machine sees as `Error`
 * (see `core/errors.ts`), so never rename one.
 */
import { LifeboatError } from '#core/errors.ts';

/** A queue message that is not a valid task of this protocol version. */
export class InvalidTask extends LifeboatError {
  override readonly name: string = 'InvalidTask';
  override readonly status = 400;
}

/** The runner stopped or crashed while the task ran; reported at its next start. */
export class RunnerRestarted extends LifeboatError {
  override readonly name: string = 'RunnerRestarted';
  override readonly status = 503;
}

/** The task was aborted: its execution is gone (heartbeat refused) or the runner is stopping. */
export class TaskAborted extends LifeboatError {
  override readonly name: string = 'TaskAborted';
  override readonly status = 409;
}

/** The task's result does not fit in a SendTaskSuccess output (256 KiB). */
export class ResultTooLarge extends LifeboatError {
  override readonly name: string = 'ResultTooLarge';
  override readonly status = 500;
}

/** The runner cannot reach or use the Lifeboat API (no endpoint, refused, bad answer). */
export class ApiUnavailable extends LifeboatError {
  override readonly name: string = 'ApiUnavailable';
  override readonly status = 502;
}

/** The task asks for something this runner version cannot do (rather than doing something else). */
export class Unsupported extends LifeboatError {
  override readonly name: string = 'Unsupported';
  override readonly status = 501;
}

/**
 * The runner has no usable host identity: no saved credential (or one the API refuses) and no
 * enrollment token to register with. Retrying cannot help: an admin must enroll the host.
 */
export class NotEnrolled extends LifeboatError {
  override readonly name: string = 'NotEnrolled';
  override readonly status = 401;
}

/** A restore drill's VM was defined but did not reach running: the restore would not boot. */
export class DrillFailed extends LifeboatError {
  override readonly name: string = 'DrillFailed';
  override readonly status = 502;
}
