/**
 * Deployment settings read from CDK context (`cdk.json`, `-c key=value`, or the `context`
 * argument of `buildApp`), with the defaults of the shared design.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Node } from 'constructs';
import { type ActionRights, parseActionRights } from '#core/rights.ts';

/** Context key that turns NodejsFunction bundling (esbuild) off: tests and local mode synth fast. */
export const SKIP_BUNDLING = 'lifeboat:skipBundling';

/** Default name of the shared host dead-letter queue (local mode creates the same one). */
export const HOST_DEAD_LETTER_QUEUE_NAME = 'lifeboat-dlq-hosts';

/**
 * Context key: the CA certificate bundle (PEM) the runners' certificates chain to, or the path
 * of a file holding it. Becomes the stack's IAM Roles Anywhere trust anchor.
 */
export const TRUST_ANCHOR_CERTIFICATE = 'runnerTrustAnchorCertificate';
/** Context key: ARN of an ACM Private CA issuing the runners' certificates (instead of a bundle). */
export const TRUST_ANCHOR_PCA_ARN = 'runnerTrustAnchorPcaArn';

/** Where the runners' certificates come from: a CA bundle, or an ACM Private CA. */
export type TrustAnchorSource = { certificateBundle: string } | { acmPcaArn: string };

/** Settings of one Lifeboat deployment. */
export interface LifeboatConfig {
  /** MAX_BACKUPS: active backups in the whole cloud. */
  maxBackups: number;
  /** MAX_BACKUPS_HOST: active backups per host (a host record may override it). */
  maxBackupsHost: number;
  /** Seconds between runner heartbeats; the host task fails when one is missed. */
  heartbeatSeconds: number;
  /** HOST_OFFLINE_SECONDS: a host whose runner has not reported for this long becomes OFFLINE. */
  hostOfflineSeconds: number;
  /** Upper bound of one host task (backup or restore), heartbeats or not. */
  hostTaskTimeoutSeconds: number;
  /** First wait before RunOnHost is retried on a transient error (DatastoreLocked, ...). */
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
   * Principal tag naming the host a runner's credentials belong to: `x509Subject/CN`, the tag
   * IAM Roles Anywhere sets from the certificate's subject CN (issue each host a certificate whose
   * CN is its host id). A credential broker tagging sessions itself may name another tag.
   */
  runnerHostTag: string;
  /**
   * The CA runners' certificates chain to (context {@link TRUST_ANCHOR_CERTIFICATE} or
   * {@link TRUST_ANCHOR_PCA_ARN}). Absent: the stack creates no trust anchor, no Roles Anywhere
   * profile and no runner role (only the runner policy), so no runner can get credentials.
   */
  runnerTrustAnchor?: TrustAnchorSource;
  /** AUDIT_RETENTION_DAYS: days an audit record is kept before DynamoDB's TTL drops it. */
  auditRetentionDays: number;
  /**
   * MONITOR_INTERVAL_MINUTES: minutes between two measures of each datastore's capacity (the
   * dispatcher's periodic run queues them; each backup queues one too). 0 turns both off.
   */
  monitorIntervalMinutes: number;
  /** CAPACITY_RETENTION_DAYS: days a capacity sample is kept before DynamoDB's TTL drops it. */
  capacityRetentionDays: number;
  /**
   * ACTION_RIGHTS: the rights table's changes for this deployment (core/rights.ts), e.g.
   * `{"POST /vms/{id}/backup": {"vm": "manage"}}` as upstream's VM_ADMIN_ACTIONS; checked at synth.
   */
  actionRights: ActionRights;
  /**
   * NOTIFY_WEBHOOK_URL: where failed and missed backups and failed verifications are posted,
   * signed with the secret store's `notify/webhook` NOTIFY_WEBHOOK_SECRET, when no SNS topic is
   * configured (local mode; in AWS the stack's topic is). Absent: none.
   */
  notifyWebhookUrl?: string;
  /** MISSED_CHECK_MINUTES: minutes between two checks for missed scheduled backups; 0: never. */
  missedCheckMinutes: number;
  /**
   * Whether the stack serves the web console (infra/console-site.ts: S3 behind CloudFront, the
   * API on the same origin). Context `consoleSite: false` leaves the API alone, as before.
   */
  consoleSite: boolean;
}

const DEFAULTS: LifeboatConfig = {
  maxBackups: 5,
  maxBackupsHost: 2,
  heartbeatSeconds: 120,
  hostOfflineSeconds: 180,
  hostTaskTimeoutSeconds: 86_400,
  hostRetryIntervalSeconds: 30,
  hostRetryMaxAttempts: 6,
  hostQueuePrefix: 'lifeboat-host-',
  hostDeadLetterQueueName: HOST_DEAD_LETTER_QUEUE_NAME,
  runnerHostTag: 'x509Subject/CN',
  auditRetentionDays: 400,
  monitorIntervalMinutes: 10,
  capacityRetentionDays: 400,
  actionRights: {},
  missedCheckMinutes: 5,
  consoleSite: true,
};

/** Reads the settings from the construct tree's context; `-c` values arrive as strings. */
export function readConfig(node: Node): LifeboatConfig {
  /** A whole number of at least `min` (1: a positive integer; 0 where 0 turns a thing off). */
  const int = (key: keyof LifeboatConfig, min = 1): number => {
    const raw = node.tryGetContext(key);
    if (raw === undefined || raw === null || raw === '') return DEFAULTS[key] as number;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      const wanted = min === 1 ? 'a positive integer' : `a whole number of at least ${min}`;
      throw new Error(`CDK context ${key} must be ${wanted}, got ${JSON.stringify(raw)}`);
    }
    return value;
  };
  const str = (key: keyof LifeboatConfig): string => {
    const raw = node.tryGetContext(key);
    return typeof raw === 'string' && raw !== '' ? raw : (DEFAULTS[key] as string);
  };
  /** `true`/`false`, as JSON or as `-c` strings; anything else is refused. */
  const bool = (key: keyof LifeboatConfig): boolean => {
    const raw = node.tryGetContext(key);
    if (raw === undefined || raw === null || raw === '') return DEFAULTS[key] as boolean;
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    throw new Error(`CDK context ${key} must be true or false, got ${JSON.stringify(raw)}`);
  };
  const config: LifeboatConfig = {
    maxBackups: int('maxBackups'),
    maxBackupsHost: int('maxBackupsHost'),
    heartbeatSeconds: int('heartbeatSeconds'),
    hostOfflineSeconds: int('hostOfflineSeconds'),
    hostTaskTimeoutSeconds: int('hostTaskTimeoutSeconds'),
    hostRetryIntervalSeconds: int('hostRetryIntervalSeconds'),
    hostRetryMaxAttempts: int('hostRetryMaxAttempts'),
    hostQueuePrefix: str('hostQueuePrefix'),
    hostDeadLetterQueueName: str('hostDeadLetterQueueName'),
    runnerHostTag: str('runnerHostTag'),
    runnerTrustAnchor: readTrustAnchor(node),
    auditRetentionDays: int('auditRetentionDays'),
    // 0: no monitors queued by Lifeboat itself.
    monitorIntervalMinutes: int('monitorIntervalMinutes', 0),
    capacityRetentionDays: int('capacityRetentionDays'),
    actionRights: readActionRights(node),
    ...readWebhookUrl(node),
    // 0: no missed-backup check.
    missedCheckMinutes: int('missedCheckMinutes', 0),
    consoleSite: bool('consoleSite'),
  };
  if (config.hostDeadLetterQueueName.startsWith(config.hostQueuePrefix)) {
    throw new Error(
      `CDK context hostDeadLetterQueueName "${config.hostDeadLetterQueueName}" must not start with hostQueuePrefix "${config.hostQueuePrefix}": the host queue grants would cover the dead-letter queue`,
    );
  }
  return config;
}

/** The `notifyWebhookUrl` context: an http(s) URL, or nothing. */
function readWebhookUrl(node: Node): { notifyWebhookUrl?: string } {
  const raw = node.tryGetContext('notifyWebhookUrl');
  if (raw === undefined || raw === null || raw === '') return {};
  const url = typeof raw === 'string' && URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new Error('CDK context notifyWebhookUrl must be an http or https URL');
  }
  return { notifyWebhookUrl: raw as string };
}

/** The `actionRights` context: JSON text (`-c actionRights='{...}'`) or an object in cdk.json. */
function readActionRights(node: Node): ActionRights {
  const raw = node.tryGetContext('actionRights');
  if (raw === undefined || raw === null || raw === '') return {};
  try {
    return parseActionRights(typeof raw === 'string' ? raw : JSON.stringify(raw));
  } catch (err) {
    throw new Error(`CDK context actionRights: ${(err as Error).message}`);
  }
}

const PCA_ARN = /^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority\/[0-9a-f-]+$/;

/**
 * The trust anchor's source from context: a PEM bundle (inline or a file path) checked to hold
 * CA certificates, or an ACM Private CA ARN; never both. Undefined when neither is set.
 */
function readTrustAnchor(node: Node): TrustAnchorSource | undefined {
  const text = (key: string): string | undefined => {
    const raw = node.tryGetContext(key);
    return typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : undefined;
  };
  const certificate = text(TRUST_ANCHOR_CERTIFICATE);
  const pcaArn = text(TRUST_ANCHOR_PCA_ARN);
  if (certificate && pcaArn) {
    throw new Error(`CDK context: set ${TRUST_ANCHOR_CERTIFICATE} or ${TRUST_ANCHOR_PCA_ARN}, not both`);
  }
  if (pcaArn) {
    if (!PCA_ARN.test(pcaArn)) {
      throw new Error(
        `CDK context ${TRUST_ANCHOR_PCA_ARN} must be an ACM Private CA ARN, got ${JSON.stringify(pcaArn)}`,
      );
    }
    return { acmPcaArn: pcaArn };
  }
  if (!certificate) return undefined;
  let pem = certificate;
  if (!certificate.startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(certificate, 'utf8');
    } catch (error) {
      throw new Error(
        `CDK context ${TRUST_ANCHOR_CERTIFICATE}: cannot read ${certificate}: ${(error as Error).message}`,
      );
    }
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new Error(`CDK context ${TRUST_ANCHOR_CERTIFICATE}: no PEM certificate found`);
  for (const block of blocks) {
    let parsed: X509Certificate;
    try {
      parsed = new X509Certificate(block);
    } catch {
      throw new Error(`CDK context ${TRUST_ANCHOR_CERTIFICATE}: a certificate of the bundle does not parse`);
    }
    if (!parsed.ca) {
      throw new Error(
        `CDK context ${TRUST_ANCHOR_CERTIFICATE}: ${parsed.subject.replaceAll('\n', ', ')} is not a CA certificate`,
      );
    }
  }
  return { certificateBundle: `${blocks.join('\n')}\n` };
}
