/**
 * Deployment settings read from CDK context (`cdk.json`, `-c key=value`, or the `context`
 * argument of `buildApp`), with the defaults of the shared design.
 */
import type { Node } from 'constructs';

/** Context key that turns NodejsFunction bundling (esbuild) off: tests and local mode synth fast. */
export const SKIP_BUNDLING = 'lifeboat:skipBundling';

/** Default name of the shared host dead-letter queue (local mode creates the same one). */
export const HOST_DEAD_LETTER_QUEUE_NAME = 'lifeboat-dlq-hosts';

/** Settings of one Lifeboat deployment. */
export interface LifeboatConfig {
  /** MAX_BACKUPS: active backups in the whole cloud. */
  maxBackups: number;
  /** MAX_BACKUPS_HOST: active backups per host (a host record may override it). */
  maxBackupsHost: number;
  /** Seconds between runner heartbeats; the host task fails when one is missed. */
  heartbeatSeconds: number;
  /** Upper bound of one host task (backup or restore), heartbeats or not. */
  hostTaskTimeoutSeconds: number;
  /** First wait before RunOnHost is retried on a transient error (HostBusy, ...). */
  hostRetryIntervalSeconds: number;
  /** Attempts of RunOnHost on transient errors (backoff rate 2). */
  hostRetryMaxAttempts: number;
  /** Queue name prefix: host N reads `<prefix>N` (created by the API when the host registers). */
  hostQueuePrefix: string;
  /**
   * The one dead-letter queue every host queue redrives to, created by the stack so it can carry
   * an alarm. It must not start with `hostQueuePrefix`: the `<prefix>*` grants of the state
   * machines and the API would then cover it.
   */
  hostDeadLetterQueueName: string;
  /**
   * Principal tag naming the host a runner's credentials belong to. `lifeboat-host` when a
   * credential broker tags the session; with IAM Roles Anywhere use `x509Subject/CN` and issue
   * each host a certificate whose CN is its host id.
   */
  runnerHostTag: string;
}

const DEFAULTS: LifeboatConfig = {
  maxBackups: 5,
  maxBackupsHost: 2,
  heartbeatSeconds: 120,
  hostTaskTimeoutSeconds: 86_400,
  hostRetryIntervalSeconds: 30,
  hostRetryMaxAttempts: 6,
  hostQueuePrefix: 'lifeboat-host-',
  hostDeadLetterQueueName: HOST_DEAD_LETTER_QUEUE_NAME,
  runnerHostTag: 'lifeboat-host',
};

/** Reads the settings from the construct tree's context; `-c` values arrive as strings. */
export function readConfig(node: Node): LifeboatConfig {
  const int = (key: keyof LifeboatConfig): number => {
    const raw = node.tryGetContext(key);
    if (raw === undefined || raw === null || raw === '') return DEFAULTS[key] as number;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) {
      throw new Error(`CDK context ${key} must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    return value;
  };
  const str = (key: keyof LifeboatConfig): string => {
    const raw = node.tryGetContext(key);
    return typeof raw === 'string' && raw !== '' ? raw : (DEFAULTS[key] as string);
  };
  const config: LifeboatConfig = {
    maxBackups: int('maxBackups'),
    maxBackupsHost: int('maxBackupsHost'),
    heartbeatSeconds: int('heartbeatSeconds'),
    hostTaskTimeoutSeconds: int('hostTaskTimeoutSeconds'),
    hostRetryIntervalSeconds: int('hostRetryIntervalSeconds'),
    hostRetryMaxAttempts: int('hostRetryMaxAttempts'),
    hostQueuePrefix: str('hostQueuePrefix'),
    hostDeadLetterQueueName: str('hostDeadLetterQueueName'),
    runnerHostTag: str('runnerHostTag'),
  };
  if (config.hostDeadLetterQueueName.startsWith(config.hostQueuePrefix)) {
    throw new Error(
      `CDK context hostDeadLetterQueueName "${config.hostDeadLetterQueueName}" must not start with hostQueuePrefix "${config.hostQueuePrefix}": the host queue grants would cover the dead-letter queue`,
    );
  }
  return config;
}
