/**
 * Someone told: failed backups, missed scheduled backups and failed verifications are notified.
 * In AWS to the stack's SNS topic (NOTIFY_TOPIC_ARN, set by the CDK stack); without a topic, to a
 * webhook (NOTIFY_WEBHOOK_URL, CDK context or local config `notifyWebhookUrl`) as a JSON POST
 * whose body is signed with HMAC-SHA256 under a shared secret: header
 * `X-Lifeboat-Signature: sha256=<hex>`. The secret is read from the secret store, as datastore
 * secrets are (reference {@link WEBHOOK_SECRET_REF}, key `NOTIFY_WEBHOOK_SECRET`: locally the
 * file `notify_webhook.json` of the secret folder, in AWS the secret `lifeboat/notify/webhook`);
 * without it nothing is sent unsigned. The secret and the URL never reach a log.
 *
 * A notification that cannot be delivered never fails what it reports on: it is logged (kind
 * and reason) and counted (the NotifyFailures metric), and {@link notify} answers false.
 */
import { createHmac } from 'node:crypto';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { region } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { notifyFailureMetric } from './metrics.ts';
import { secretStore } from './secrets.ts';

/** What happened. */
export type NotificationKind = 'backup.failed' | 'backup.missed' | 'verify.failed';

/** One notification: the event, when, a readable line, and the ids it is about. */
export interface Notification {
  kind: NotificationKind;
  /** ISO-8601. */
  at: string;
  /** One readable line (`backup of VM 7 failed: DatastoreUnreachable: ...`). */
  message: string;
  vmId?: number;
  datastoreId?: number;
  imageId?: number;
  executionId?: string;
  scheduleId?: number;
  /** The error, as recorded on the execution (never a secret: errors are shown to users too). */
  error?: { name: string; message: string };
}

/** The secret store reference holding the webhook's shared secret. */
export const WEBHOOK_SECRET_REF = 'notify/webhook';
/** The key of the shared secret in {@link WEBHOOK_SECRET_REF}. */
export const WEBHOOK_SECRET_KEY = 'NOTIFY_WEBHOOK_SECRET';
/** The signature header of a webhook request. */
export const SIGNATURE_HEADER = 'X-Lifeboat-Signature';
/** How long a delivery may take: a notifying Lambda has its own work to finish. */
const TIMEOUT_MS = 5000;

/** `sha256=<hex>`: HMAC-SHA256 of the exact body bytes under `secret`. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** A reason that names no URL, no secret and no body: the error's name, code or HTTP status. */
function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown error';
  const cause = (err as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
  return err.name === 'WebhookRefused' ? err.message : `${err.name}${code}`;
}

async function postWebhook(url: string, body: string, kind: NotificationKind): Promise<void> {
  const values = await secretStore().get(WEBHOOK_SECRET_REF);
  const secret = values[WEBHOOK_SECRET_KEY];
  if (!secret) throw Object.assign(new Error(`no ${WEBHOOK_SECRET_KEY}`), { name: 'WebhookRefused' });
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'lifeboat-notify',
      'x-lifeboat-event': kind,
      [SIGNATURE_HEADER]: signBody(body, secret),
    },
    body,
    redirect: 'error',
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  await res.body?.cancel();
  if (!res.ok) {
    throw Object.assign(new Error(`webhook answered ${res.status}`), { name: 'WebhookRefused' });
  }
}

async function publishSns(topicArn: string, body: string, notification: Notification): Promise<void> {
  const client = new SNSClient({ region: region() });
  try {
    await client.send(
      new PublishCommand({
        TopicArn: topicArn,
        // SNS subjects: at most 100 printable ASCII characters.
        Subject: `Lifeboat: ${notification.message}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 100),
        Message: body,
        MessageAttributes: { kind: { DataType: 'String', StringValue: notification.kind } },
      }),
      { abortSignal: AbortSignal.timeout(TIMEOUT_MS) },
    );
  } finally {
    client.destroy();
  }
}

/**
 * Deliver `notification` where the deployment says (SNS topic, else webhook, else nowhere).
 * Never throws: true when delivered, false when not configured or not delivered (logged, counted).
 */
export async function notify(notification: Notification): Promise<boolean> {
  const topicArn = process.env.NOTIFY_TOPIC_ARN;
  const url = process.env.NOTIFY_WEBHOOK_URL;
  if (!topicArn && !url) return false;
  const body = JSON.stringify({ source: 'lifeboat', ...notification });
  try {
    if (topicArn) await publishSns(topicArn, body, notification);
    else await postWebhook(url as string, body, notification.kind);
    log('info', 'notification sent', { kind: notification.kind, via: topicArn ? 'sns' : 'webhook' });
    return true;
  } catch (err) {
    log('warn', 'notification not sent', {
      kind: notification.kind,
      via: topicArn ? 'sns' : 'webhook',
      reason: reasonOf(err),
    });
    try {
      notifyFailureMetric();
    } catch {
      // Counting is best effort too.
    }
    return false;
  }
}
